// Which validator checks the Kubernetes manifests against the API's schemas. The hand-written one is a
// stopgap: once the dev dependency kubernetes-models is installed, export from
// './kubernetesSchema.models.js' instead and delete kubernetesSchema.handwritten.ts.
export { kubernetesProblems } from './kubernetesSchema.handwritten.js';

/** One object of a manifest file, and where it is (`deploy/kubernetes/service.yaml#0`). */
export interface Manifest {
  where: string;
  doc: unknown;
}
