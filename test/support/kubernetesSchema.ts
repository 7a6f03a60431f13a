// Which validator checks the Kubernetes manifests against the API's schemas: kubernetes-models, the
// schemas generated from the Kubernetes API (kubernetesSchema.models.ts).
export { kubernetesProblems } from './kubernetesSchema.models.js';

/** One object of a manifest file, and where it is (`deploy/kubernetes/service.yaml#0`). */
export interface Manifest {
  where: string;
  doc: unknown;
}
