// Hand-written zod schemas of the Kubernetes objects in deploy/kubernetes, for the fields the
// service uses. A stopgap until a maintained validator is installed: kubernetesSchema.models.ts checks
// the same documents against the schemas generated from the Kubernetes API (package
// kubernetes-models); once it is installed, kubernetesSchema.ts re-exports that one and this file goes.
import { z } from 'zod';
import type { Manifest } from './kubernetesSchema.js';

// Strict where a misspelt key would silently drop a setting (a `readinesProbe` is no probe at all).

const labels = z.record(z.string(), z.string());
const metadata = z.looseObject({ name: z.string().min(1), labels: labels.optional() });
const intOrString = z.union([z.number().int(), z.string().min(1)]);
const quantity = z.union([z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/), z.number()]);

const probe = z.strictObject({
  httpGet: z
    .strictObject({
      path: z.string().startsWith('/'),
      port: intOrString,
      host: z.string().optional(),
      scheme: z.enum(['HTTP', 'HTTPS']).optional(),
      httpHeaders: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
    })
    .optional(),
  exec: z.strictObject({ command: z.array(z.string()) }).optional(),
  tcpSocket: z.strictObject({ port: intOrString, host: z.string().optional() }).optional(),
  grpc: z.strictObject({ port: z.number().int(), service: z.string().optional() }).optional(),
  initialDelaySeconds: z.number().int().min(0).optional(),
  periodSeconds: z.number().int().min(1).optional(),
  timeoutSeconds: z.number().int().min(1).optional(),
  failureThreshold: z.number().int().min(1).optional(),
  successThreshold: z.number().int().min(1).optional(),
  terminationGracePeriodSeconds: z.number().int().optional(),
});

const lifecycleHandler = z.strictObject({
  exec: z.strictObject({ command: z.array(z.string()).min(1) }).optional(),
  httpGet: z.looseObject({ path: z.string(), port: intOrString }).optional(),
  sleep: z.strictObject({ seconds: z.number().int().min(1) }).optional(),
  tcpSocket: z.looseObject({ port: intOrString }).optional(),
});

const envVar = z.strictObject({
  name: z.string().min(1),
  // Kubernetes rejects a number here: `value: 25` must be `value: "25"`.
  value: z.string().optional(),
  valueFrom: z
    .strictObject({
      fieldRef: z.looseObject({ fieldPath: z.string() }).optional(),
      resourceFieldRef: z.looseObject({ resource: z.string() }).optional(),
      secretKeyRef: z.looseObject({ name: z.string(), key: z.string() }).optional(),
      configMapKeyRef: z.looseObject({ name: z.string(), key: z.string() }).optional(),
    })
    .optional(),
});

const envFromSource = z.strictObject({
  prefix: z.string().optional(),
  configMapRef: z.looseObject({ name: z.string() }).optional(),
  secretRef: z.looseObject({ name: z.string() }).optional(),
});

const resources = z.strictObject({
  requests: z.strictObject({ cpu: quantity, memory: quantity }).partial().optional(),
  limits: z.strictObject({ cpu: quantity, memory: quantity }).partial().optional(),
  claims: z.array(z.unknown()).optional(),
});

// Every field of a v1 Container.
const container = z.strictObject({
  name: z.string().min(1),
  image: z.string().min(1),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  workingDir: z.string().optional(),
  ports: z
    .array(
      z.strictObject({
        name: z
          .string()
          .regex(/^[a-z0-9-]{1,15}$/)
          .optional(),
        containerPort: z.number().int().min(1).max(65535),
        protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
        hostPort: z.number().int().optional(),
        hostIP: z.string().optional(),
      }),
    )
    .optional(),
  env: z.array(envVar).optional(),
  envFrom: z.array(envFromSource).optional(),
  resources: resources.optional(),
  resizePolicy: z.array(z.unknown()).optional(),
  restartPolicy: z.string().optional(),
  livenessProbe: probe.optional(),
  readinessProbe: probe.optional(),
  startupProbe: probe.optional(),
  lifecycle: z
    .strictObject({ preStop: lifecycleHandler.optional(), postStart: lifecycleHandler.optional() })
    .optional(),
  securityContext: z
    .strictObject({
      allowPrivilegeEscalation: z.boolean().optional(),
      readOnlyRootFilesystem: z.boolean().optional(),
      runAsNonRoot: z.boolean().optional(),
      runAsUser: z.number().int().optional(),
      runAsGroup: z.number().int().optional(),
      privileged: z.boolean().optional(),
      capabilities: z
        .strictObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() })
        .optional(),
      seccompProfile: z.looseObject({ type: z.string() }).optional(),
      appArmorProfile: z.looseObject({ type: z.string() }).optional(),
      seLinuxOptions: z.looseObject({}).optional(),
      procMount: z.string().optional(),
      windowsOptions: z.looseObject({}).optional(),
    })
    .optional(),
  volumeMounts: z.array(z.looseObject({ name: z.string(), mountPath: z.string() })).optional(),
  volumeDevices: z.array(z.unknown()).optional(),
  terminationMessagePath: z.string().optional(),
  terminationMessagePolicy: z.string().optional(),
  stdin: z.boolean().optional(),
  stdinOnce: z.boolean().optional(),
  tty: z.boolean().optional(),
});

// Every field of a v1 PodSpec.
const podSpecKeys = z.enum([
  'activeDeadlineSeconds',
  'affinity',
  'automountServiceAccountToken',
  'containers',
  'dnsConfig',
  'dnsPolicy',
  'enableServiceLinks',
  'ephemeralContainers',
  'hostAliases',
  'hostIPC',
  'hostNetwork',
  'hostPID',
  'hostUsers',
  'hostname',
  'imagePullSecrets',
  'initContainers',
  'nodeName',
  'nodeSelector',
  'os',
  'overhead',
  'preemptionPolicy',
  'priority',
  'priorityClassName',
  'readinessGates',
  'resourceClaims',
  'resources',
  'restartPolicy',
  'runtimeClassName',
  'schedulerName',
  'schedulingGates',
  'securityContext',
  'serviceAccount',
  'serviceAccountName',
  'setHostnameAsFQDN',
  'shareProcessNamespace',
  'subdomain',
  'terminationGracePeriodSeconds',
  'tolerations',
  'topologySpreadConstraints',
  'volumes',
]);
const podSpec = z
  .looseObject({
    containers: z.array(container).min(1),
    initContainers: z.array(container).optional(),
    terminationGracePeriodSeconds: z.number().int().min(0).optional(),
    securityContext: z
      .looseObject({
        runAsNonRoot: z.boolean().optional(),
        runAsUser: z.number().int().optional(),
      })
      .optional(),
  })
  .superRefine((spec, ctx) => {
    for (const key of Object.keys(spec)) {
      if (!podSpecKeys.safeParse(key).success)
        ctx.addIssue({ code: 'custom', path: [key], message: 'not a PodSpec field' });
    }
  });

const selector = z.looseObject({ matchLabels: labels });

const deploymentSchema = z.looseObject({
  apiVersion: z.literal('apps/v1'),
  kind: z.literal('Deployment'),
  metadata,
  spec: z.strictObject({
    replicas: z.number().int().min(0).optional(),
    selector,
    strategy: z
      .strictObject({
        type: z.enum(['RollingUpdate', 'Recreate']),
        rollingUpdate: z
          .strictObject({ maxUnavailable: intOrString, maxSurge: intOrString })
          .partial()
          .optional(),
      })
      .optional(),
    minReadySeconds: z.number().int().optional(),
    revisionHistoryLimit: z.number().int().optional(),
    progressDeadlineSeconds: z.number().int().optional(),
    paused: z.boolean().optional(),
    template: z.strictObject({
      metadata: z.looseObject({ labels, annotations: labels.optional() }),
      spec: podSpec,
    }),
  }),
});

const serviceSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata,
  spec: z.looseObject({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).optional(),
    selector: labels,
    ports: z
      .array(
        z.strictObject({
          name: z.string().optional(),
          port: z.number().int().min(1).max(65535),
          targetPort: intOrString.optional(),
          protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
          nodePort: z.number().int().optional(),
          appProtocol: z.string().optional(),
        }),
      )
      .min(1),
  }),
});

const pdbSchema = z.looseObject({
  apiVersion: z.literal('policy/v1'),
  kind: z.literal('PodDisruptionBudget'),
  metadata,
  spec: z
    .strictObject({
      minAvailable: intOrString.optional(),
      maxUnavailable: intOrString.optional(),
      selector,
      unhealthyPodEvictionPolicy: z.string().optional(),
    })
    .refine((s) => (s.minAvailable === undefined) !== (s.maxUnavailable === undefined), {
      message: 'set exactly one of minAvailable and maxUnavailable',
    }),
});

const hpaSchema = z.looseObject({
  apiVersion: z.literal('autoscaling/v2'),
  kind: z.literal('HorizontalPodAutoscaler'),
  metadata,
  spec: z.strictObject({
    scaleTargetRef: z.strictObject({ apiVersion: z.string(), kind: z.string(), name: z.string() }),
    minReplicas: z.number().int().min(1),
    maxReplicas: z.number().int().min(1),
    metrics: z.array(
      z.looseObject({
        type: z.string(),
        resource: z
          .strictObject({
            name: z.string(),
            target: z.looseObject({ type: z.string(), averageUtilization: z.number().optional() }),
          })
          .optional(),
      }),
    ),
    behavior: z.looseObject({}).optional(),
  }),
});

// ConfigMap and Secret values must be strings: `25` unquoted is rejected by the API server.
const configMapSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('ConfigMap'),
  metadata,
  data: z.record(z.string(), z.string()),
});

const secretSchema = z.looseObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata,
  type: z.string().optional(),
  stringData: z.record(z.string(), z.string()).optional(),
  data: z.record(z.string(), z.string()).optional(),
});

const schemas: Record<string, z.ZodType> = {
  Deployment: deploymentSchema,
  Service: serviceSchema,
  PodDisruptionBudget: pdbSchema,
  HorizontalPodAutoscaler: hpaSchema,
  ConfigMap: configMapSchema,
  Secret: secretSchema,
};

/** Every way the manifests depart from their kinds' schemas, one line each with its path. */
export async function kubernetesProblems(manifests: Manifest[]): Promise<string[]> {
  return manifests.flatMap(({ where, doc }) => {
    const kind = (doc as { kind?: unknown } | null)?.kind;
    const schema = typeof kind === 'string' ? schemas[kind] : undefined;
    if (!schema) return [`${where}: no schema for kind ${String(kind)}`];
    const result = schema.safeParse(doc);
    return result.success ? [] : result.error.issues.map((i) => `${where}.${i.path.join('.')}: ${i.message}`);
  });
}
