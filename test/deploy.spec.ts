// The deployment files, checked offline: every YAML document parses, the Kubernetes objects have
// the shape and the wiring the service needs (ports, probes, drain deadline, settings, the bots file
// and the secrets it names), the compose file and nginx agree with each other, the Dockerfile runs
// node as a non-root PID 1, and the alert rules only name metrics that deploy/METRICS.md promises.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYamlText } from 'yaml';
import { z } from 'zod';
import { parseBotsFile } from '../src/botsFile.js';
import { botDefaultsOf, parseConfig, secretSettings, settingNames } from '../src/config.js';
import { createMetrics } from '../src/metrics.js';
import { kubernetesProblems, type Manifest } from './support/kubernetesSchema.js';
import { startTestService } from './support/service.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const k8sDir = 'deploy/kubernetes';
const k8sFiles = readdirSync(join(root, k8sDir))
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .map((f) => `${k8sDir}/${f}`);

interface Parsed {
  file: string;
  docs: unknown[];
  problems: string[];
}

/** Every document of a YAML file, with its errors and warnings as readable lines. */
function parseYaml(file: string): Parsed {
  // merge: compose files use `<<: *anchor` (YAML 1.1 merge keys), which compose supports.
  const documents = parseAllDocuments(read(file), { merge: true });
  const list = Array.isArray(documents) ? documents : [];
  const problems = list.flatMap((d) => [...d.errors, ...d.warnings].map((e) => `${file}: ${e.message}`));
  const docs = list.map((d) => d.toJS() as unknown).filter((d) => d !== null && d !== undefined);
  return { file, docs, problems };
}

/** Every way a value departs from a schema, one line each with its path. */
function problemsOf(schema: z.ZodType, value: unknown, what: string): string[] {
  const result = schema.safeParse(value);
  return result.success ? [] : result.error.issues.map((i) => `${what}.${i.path.join('.')}: ${i.message}`);
}

/** Parse with a schema, failing the test with every issue and its path. */
function shape<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const problems = problemsOf(schema, value, what);
  if (problems.length) throw new Error(`${what} does not match the schema:\n  ${problems.join('\n  ')}`);
  return schema.parse(value);
}

// Kustomize's file is no Kubernetes API object: only the list of resources is read from it.
const kustomizationSchema = z.looseObject({
  apiVersion: z.literal('kustomize.config.k8s.io/v1beta1'),
  kind: z.literal('Kustomization'),
  resources: z.array(z.string()),
});

const expectedApiVersion: Record<string, string> = {
  Deployment: 'apps/v1',
  Service: 'v1',
  PodDisruptionBudget: 'policy/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  Secret: 'v1',
  ConfigMap: 'v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
};

const header = z.looseObject({ apiVersion: z.string(), kind: z.string() });
const k8sParsed = k8sFiles.map(parseYaml);
const k8sDocs = k8sParsed.flatMap((p) =>
  p.docs.map((doc, i) => ({
    file: p.file,
    where: `${p.file}#${i}`,
    doc,
    ...shape(header, doc, `${p.file}#${i}`),
  })),
);
/** The Kubernetes API objects (all but kustomize's own file), for the schema check. */
const k8sObjects: Manifest[] = k8sDocs
  .filter((d) => d.kind !== 'Kustomization')
  .map(({ where, doc }) => ({ where, doc }));

// ---- what the checks below read of each object ----
// The objects are checked against the Kubernetes API's schemas first (kubernetesProblems); these types
// only name the fields read here.

type Labels = Record<string, string>;
type IntOrString = number | string;
interface Metadata {
  name: string;
  labels?: Labels;
  annotations?: Labels;
}
interface HttpProbe {
  httpGet?: { path?: string; port: IntOrString };
}
interface Container {
  name: string;
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: unknown } }>;
  envFrom?: Array<{ prefix?: string; configMapRef?: { name: string }; secretRef?: { name: string } }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
  readinessProbe?: HttpProbe;
  livenessProbe?: HttpProbe;
  startupProbe?: HttpProbe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
}
interface Deployment {
  metadata: Metadata;
  spec: {
    replicas?: number;
    selector: { matchLabels: Labels };
    strategy?: { type?: string; rollingUpdate?: { maxUnavailable?: IntOrString; maxSurge?: IntOrString } };
    template: {
      metadata: Metadata;
      spec: {
        containers: Container[];
        volumes?: Array<{ name: string; configMap?: { name: string; optional?: boolean } }>;
        terminationGracePeriodSeconds?: number;
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
      };
    };
  };
}
interface Service {
  metadata: Metadata;
  spec: { type?: string; selector: Labels; ports: Array<{ port: number; targetPort?: IntOrString }> };
}
interface PodDisruptionBudget {
  metadata: Metadata;
  spec: { minAvailable?: IntOrString; maxUnavailable?: IntOrString; selector: { matchLabels: Labels } };
}
interface HorizontalPodAutoscaler {
  metadata: Metadata;
  spec: {
    scaleTargetRef: { apiVersion: string; kind: string; name: string };
    minReplicas?: number;
    maxReplicas: number;
    metrics: Array<{
      type: string;
      resource?: { name: string; target: { type: string; averageUtilization?: number } };
    }>;
  };
}
interface ConfigMap {
  metadata: Metadata;
  data: Record<string, string>;
}
interface Secret {
  metadata: Metadata;
  stringData?: Record<string, string>;
  data?: Record<string, string>;
}

function only<T>(kind: string): T {
  const found = k8sDocs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} in ${k8sDir}, found ${found.length}`);
  return found[0]!.doc as T;
}

/** The one object of a kind with this name. */
function named<T>(kind: string, name: string): T {
  const found = k8sDocs.filter(
    (d) => d.kind === kind && (d.doc as { metadata?: Metadata }).metadata?.name === name,
  );
  if (found.length !== 1)
    throw new Error(`expected exactly one ${kind} ${name} in ${k8sDir}, found ${found.length}`);
  return found[0]!.doc as T;
}

// Read lazily, so that a missing object fails only the checks that read it, each with its own message.
const deployment = () => only<Deployment>('Deployment');
const service = () => only<Service>('Service');
const pdb = () => only<PodDisruptionBudget>('PodDisruptionBudget');
const hpa = () => only<HorizontalPodAutoscaler>('HorizontalPodAutoscaler');
/** The settings: the ConfigMap named as the Deployment. */
const configMap = () => named<ConfigMap>('ConfigMap', deployment().metadata.name);
/** The bots file: the ConfigMap the pods mount. */
const botsConfigMap = () => named<ConfigMap>('ConfigMap', botsVolume().configMap!.name);
const secret = () => only<Secret>('Secret');
const appContainer = () => {
  const [first] = deployment().spec.template.spec.containers;
  if (!first) throw new Error('the Deployment has no container');
  return first;
};
const appPort = () => {
  const port = appContainer().ports?.find((p) => p.containerPort === 8080);
  if (!port) throw new Error('the container declares no port 8080 (PORT defaults to 8080)');
  return port;
};
/** Where WECOM_BOTS_FILE points the pods: the settings ConfigMap's value. */
const botsFilePath = () => {
  const path = configMap().data.WECOM_BOTS_FILE;
  if (!path) throw new Error('the ConfigMap sets no WECOM_BOTS_FILE');
  return path;
};
/** The container's mount of the directory WECOM_BOTS_FILE is in. */
const botsMount = () => {
  const mount = appContainer().volumeMounts?.find((m) => m.mountPath === dirname(botsFilePath()));
  if (!mount) throw new Error(`the container mounts nothing at ${dirname(botsFilePath())}`);
  return mount;
};
/** The pod's volume behind that mount: a ConfigMap. */
const botsVolume = () => {
  const volume = deployment().spec.template.spec.volumes?.find((v) => v.name === botsMount().name);
  if (!volume?.configMap) throw new Error(`the volume ${botsMount().name} is no ConfigMap`);
  return volume;
};
/** Every key the Secret gives the container's environment. */
const secretKeys = () => [...Object.keys(secret().stringData ?? {}), ...Object.keys(secret().data ?? {})];

/** Does a Service targetPort or probe port (name or number) mean the app's container port? */
const isAppPort = (port: string | number | undefined) =>
  port === appPort().containerPort || (appPort().name !== undefined && port === appPort().name);

// ---- settings: what src/config.ts requires, and its defaults ----

const problemsWithNothingSet = (() => {
  const result = parseConfig({});
  return result.ok ? [] : result.problems;
})();
/** The settings without which the app will not start, as the config itself says. */
const requiredSettings = [...new Set(problemsWithNothingSet.map((p) => p.split(':')[0] ?? ''))];
const defaultDrainSeconds = (() => {
  const result = parseConfig({
    WECOM_TOKEN: 'token',
    WECOM_ENCODING_AES_KEY: 'a'.repeat(43),
    DIFY_API_KEY: 'app-key',
  });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config.stream.drainMs / 1000;
})();

const isSetting = (name: string) => settingNames.includes(name);

// ---- the bots file: deploy/bots.example.yaml ----

const botsExample = read('deploy/bots.example.yaml');
/** The environment variables a bots file's values name as `${NAME}` (not its comments). */
const envRefsOf = (text: string) => [
  ...new Set([...JSON.stringify(parseYamlText(text)).matchAll(/\$\{([A-Za-z_]\w*)\}/g)].map((m) => m[1]!)),
];
/** A value of the right shape for each name: a 43-character key passes as a Token or a Dify key too. */
const filledIn = (names: readonly string[]) => Object.fromEntries(names.map((n) => [n, 'A'.repeat(43)]));
/** The environment's bot settings at their defaults: what a bot of the file leaves out. */
/** The bot settings of an environment that sets none: the defaults. */
const botDefaults = botDefaultsOf({});
const withDirectory = { mysqlUrl: 'mysql://wecom:wecom@mariadb:3306/wecom_dify' };
/**
 * The example with the long-connection bot at its end taken out of the comments, as an operator would:
 * the `# ` after the list's indent goes.
 */
const withLongConnectionBot = (() => {
  const start = botsExample.indexOf('  # - id: faq');
  if (start < 0) throw new Error('deploy/bots.example.yaml has no commented-out bot `faq` at its end');
  return botsExample.slice(0, start) + botsExample.slice(start).replace(/^ {2}# ?/gm, '  ');
})();

describe('deploy/bots.example.yaml', () => {
  it('names its secrets as environment variables: HR_… and IT_…, three a bot', () => {
    expect(envRefsOf(botsExample).sort()).toEqual(
      [
        'HR_WECOM_TOKEN',
        'HR_WECOM_AES_KEY',
        'HR_DIFY_KEY',
        'IT_WECOM_TOKEN',
        'IT_WECOM_AES_KEY',
        'IT_DIFY_KEY',
      ].sort(),
    );
  });

  it('parseBotsFile accepts it with those names set: two bots, hr and it, each with its own app and auth', () => {
    const result = parseBotsFile(botsExample, filledIn(envRefsOf(botsExample)), botDefaults, withDirectory);
    expect(result.ok ? [] : result.problems).toEqual([]);
    if (!result.ok) return;
    const [hr, helpdesk] = result.bots;
    expect(result.bots.map((b) => b.id)).toEqual(['hr', 'it']);
    expect(hr?.auth.mode).toBe('allowlist');
    expect(hr?.dify.apiUrl).toBe(botDefaults.dify.apiUrl);
    expect(hr?.dify.inputs).toEqual({ user_name: 'name', dept: 'department' });
    expect(helpdesk?.auth.mode).toBe('none');
    expect(helpdesk?.dify).toMatchObject({
      apiUrl: 'https://dify.example.com/v1',
      appType: 'workflow',
      timeoutMs: 120_000,
    });
  });

  it('is refused without them, naming each missing variable', () => {
    const result = parseBotsFile(botsExample, {}, botDefaults, withDirectory);
    expect(result.ok).toBe(false);
    const problems = result.ok ? '' : result.problems.join('\n');
    for (const name of envRefsOf(botsExample)) expect(problems).toContain(`\${${name}} is not set`);
  });

  it('its commented-out third bot, once uncommented, is one the service takes: a long-connection bot', () => {
    const added = envRefsOf(withLongConnectionBot).filter((n) => !envRefsOf(botsExample).includes(n));
    expect(added.sort()).toEqual(['FAQ_DIFY_KEY', 'FAQ_WECOM_SECRET']);
    const result = parseBotsFile(
      withLongConnectionBot,
      filledIn(envRefsOf(withLongConnectionBot)),
      botDefaults,
      withDirectory,
    );
    expect(result.ok ? [] : result.problems).toEqual([]);
    if (!result.ok) return;
    expect(result.bots.map((b) => [b.id, b.mode])).toEqual([
      ['hr', 'callback'],
      ['it', 'callback'],
      ['faq', 'long-connection'],
    ]);
    const faq = result.bots[2];
    expect(faq?.callback).toBeUndefined();
    expect(faq?.longConnection?.url).toBe(botDefaults.wsUrl);
    // Its messages carry the BotID as their aibotid: frames for another bot are dropped.
    expect(faq?.aibotid).toBe(faq?.longConnection?.botId);
  });

  it('.env.example and the Secret template name that bot\u2019s variables, commented out like the bot', () => {
    for (const name of ['FAQ_WECOM_SECRET', 'FAQ_DIFY_KEY']) {
      expect(read('.env.example'), name).toMatch(new RegExp(`^# ${name}=`, 'm'));
      expect(read(`${k8sDir}/secret.example.yaml`), name).toMatch(
        new RegExp(`^ {2}# ${name}: REPLACE_ME$`, 'm'),
      );
    }
  });

  it('.env.example shows WECOM_BOTS_FILE and every variable it names', () => {
    const dotenv = read('.env.example');
    for (const name of ['WECOM_BOTS_FILE', ...envRefsOf(botsExample)])
      expect(dotenv, name).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
  });
});

// ---- Kubernetes ----

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  it('every file parses as YAML with no errors or warnings', () => {
    expect(k8sFiles.length).toBeGreaterThan(0);
    expect(k8sParsed.flatMap((p) => p.problems)).toEqual([]);
    for (const p of k8sParsed) expect(p.docs.length, `${p.file} has no document`).toBeGreaterThan(0);
  });

  it('every document is a known kind with the expected apiVersion', () => {
    for (const d of k8sDocs) {
      expect(Object.keys(expectedApiVersion), `${d.file}: unexpected kind`).toContain(d.kind);
      expect(d.apiVersion, `${d.file}: ${d.kind}`).toBe(expectedApiVersion[d.kind]);
    }
  });

  it('has exactly one Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler and Secret, and two ConfigMaps (settings, bots)', () => {
    for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'Secret'])
      expect(k8sDocs.filter((d) => d.kind === kind).length, kind).toBe(1);
    expect(k8sDocs.filter((d) => d.kind === 'ConfigMap').length, 'ConfigMap').toBe(2);
    expect(configMap().metadata.name).not.toBe(botsConfigMap().metadata.name);
  });

  it('each object matches the Kubernetes API schema of its kind: no misspelt key, no number for a string', async () => {
    expect(await kubernetesProblems(k8sObjects)).toEqual([]);
  });

  it('the schema check finds a misspelt key, a number for a string and an unknown kind', async () => {
    const broken = (where: string, kind: string, change: (doc: Record<string, unknown>) => void) => {
      const doc = structuredClone(k8sDocs.find((d) => d.kind === kind)!.doc) as Record<string, unknown>;
      change(doc);
      return { where, doc };
    };
    const problems = await kubernetesProblems([
      broken('misspelt', 'Deployment', (doc) => {
        const [container] = (doc as unknown as Deployment).spec.template.spec.containers;
        Object.assign(container!, { readinesProbe: container!.readinessProbe, readinessProbe: undefined });
      }),
      broken('number', 'ConfigMap', (doc) => {
        (doc as { data: Record<string, unknown> }).data.DRAIN_SECONDS = 25;
      }),
      broken('unknown', 'Service', (doc) => {
        doc.kind = 'Servise';
      }),
    ]);
    const about = (where: string) => problems.filter((p) => p.startsWith(where)).join('\n');
    expect(about('misspelt')).toContain('readinesProbe');
    expect(about('number')).toContain('DRAIN_SECONDS');
    expect(about('unknown')).toContain('Servise');
  });

  it('the Deployment runs three replicas and its rolling update never goes below them', () => {
    const spec = deployment().spec;
    expect(spec.replicas).toBe(3);
    expect(spec.strategy?.type).toBe('RollingUpdate');
    expect(spec.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(spec.strategy?.rollingUpdate?.maxSurge).toBe(1);
  });

  it("the Deployment's selector matches its pod template labels", () => {
    const spec = deployment().spec;
    expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
  });

  it('the container listens on 8080, named http', () => {
    expect(appPort().name).toBe('http');
    expect(appPort().protocol ?? 'TCP').toBe('TCP');
  });

  it('the Service targets the container port (by name or number) and selects the pods', () => {
    const spec = service().spec;
    expect(spec.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(spec.ports[0]?.port).toBe(80);
    for (const port of spec.ports)
      expect(isAppPort(port.targetPort), `targetPort ${port.targetPort}`).toBe(true);
    expect(deployment().spec.template.metadata.labels).toMatchObject(spec.selector);
  });

  it('the readiness probe is GET /readyz on the container port', () => {
    const probe = appContainer().readinessProbe;
    expect(probe?.httpGet?.path).toBe('/readyz');
    expect(isAppPort(probe?.httpGet?.port), `readiness port ${probe?.httpGet?.port}`).toBe(true);
  });

  it('the liveness probe (and the startup probe, if any) is GET /healthz on the container port', () => {
    const { livenessProbe, startupProbe } = appContainer();
    expect(livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(isAppPort(livenessProbe?.httpGet?.port), `liveness port ${livenessProbe?.httpGet?.port}`).toBe(
      true,
    );
    if (startupProbe) {
      expect(startupProbe.httpGet?.path).toBe('/healthz');
      expect(isAppPort(startupProbe.httpGet?.port), `startup port ${startupProbe.httpGet?.port}`).toBe(true);
    }
  });

  it('preStop delay + DRAIN_SECONDS is less than terminationGracePeriodSeconds', () => {
    const preStop = appContainer().lifecycle?.preStop;
    const sleepArg = preStop?.exec?.command.find((_part, i, all) => i > 0 && /sleep$/.test(all[i - 1] ?? ''));
    const preStopSeconds = preStop?.sleep?.seconds ?? Number(sleepArg);
    expect(
      preStopSeconds,
      'preStop must sleep a few seconds (exec sleep N, or sleep.seconds)',
    ).toBeGreaterThan(0);
    expect(preStopSeconds).toBeLessThanOrEqual(15);

    const fromEnv = appContainer().env?.find((e) => e.name === 'DRAIN_SECONDS')?.value;
    const drain = Number(fromEnv ?? configMap().data.DRAIN_SECONDS ?? defaultDrainSeconds);
    expect(Number.isFinite(drain)).toBe(true);
    const grace = deployment().spec.template.spec.terminationGracePeriodSeconds ?? 30;
    expect(
      preStopSeconds + drain,
      `preStop ${preStopSeconds} s + drain ${drain} s vs grace ${grace} s`,
    ).toBeLessThan(grace);
  });

  it('the pod runs as non-root with a read-only root filesystem and no capabilities', () => {
    const pod = deployment().spec.template.spec;
    const sc = appContainer().securityContext;
    expect(sc?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot).toBe(true);
    // runAsNonRoot cannot verify a named user (the image's `USER node`): a numeric uid is needed.
    expect(sc?.runAsUser ?? pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(sc?.readOnlyRootFilesystem).toBe(true);
    expect(sc?.allowPrivilegeEscalation).toBe(false);
    expect(sc?.capabilities?.drop).toContain('ALL');
  });

  it('the container sets CPU and memory requests and limits', () => {
    const r = appContainer().resources;
    expect(r?.requests?.cpu).toBeDefined();
    expect(r?.requests?.memory).toBeDefined();
    expect(r?.limits?.cpu).toBeDefined();
    expect(r?.limits?.memory).toBeDefined();
  });

  it('the probes and the scrape annotation name routes the service answers', async () => {
    const { readinessProbe, livenessProbe, startupProbe } = appContainer();
    const annotations = deployment().spec.template.metadata.annotations ?? {};
    const paths = {
      readiness: readinessProbe?.httpGet?.path,
      liveness: livenessProbe?.httpGet?.path,
      startup: startupProbe?.httpGet?.path ?? livenessProbe?.httpGet?.path,
      scrape: annotations['prometheus.io/path'] ?? '/metrics',
    };
    const service = await startTestService();
    try {
      const statuses = await Promise.all(
        Object.entries(paths).map(async ([probe, path]) => [
          probe,
          path === undefined ? 'none' : (await fetch(`${service.url}${path}`)).status,
        ]),
      );
      expect(Object.fromEntries(statuses)).toEqual({
        readiness: 200,
        liveness: 200,
        startup: 200,
        scrape: 200,
      });
    } finally {
      await service.stop();
    }
  });

  it('the pods carry Prometheus scrape annotations for /metrics on the container port', () => {
    const annotations = deployment().spec.template.metadata.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(annotations['prometheus.io/port']).toBe(String(appPort().containerPort));
    expect(annotations['prometheus.io/path'] ?? '/metrics').toBe('/metrics');
  });

  it('the PodDisruptionBudget selects the pods and keeps at least two of three running', () => {
    const spec = pdb().spec;
    expect(deployment().spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
    if (spec.maxUnavailable !== undefined) expect(spec.maxUnavailable).toBe(1);
    else expect(spec.minAvailable).toBe(2);
  });

  it('the HorizontalPodAutoscaler scales the Deployment on CPU between 3 and 10 replicas', () => {
    const spec = hpa().spec;
    expect(spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment().metadata.name,
    });
    expect(spec.minReplicas).toBe(3);
    expect(spec.maxReplicas).toBe(10);
    const cpu = spec.metrics.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu');
    expect(cpu?.resource?.target.type).toBe('Utilization');
    expect(cpu?.resource?.target.averageUtilization).toBe(70);
  });

  it('envFrom refers to the ConfigMap and the Secret defined here', () => {
    const envFrom = appContainer().envFrom ?? [];
    expect(envFrom.map((e) => e.configMapRef?.name).filter(Boolean)).toEqual([configMap().metadata.name]);
    expect(envFrom.map((e) => e.secretRef?.name).filter(Boolean)).toEqual([secret().metadata.name]);
    expect(
      envFrom.every((e) => e.prefix === undefined),
      'a prefix would rename every setting',
    ).toBe(true);
  });

  it('every env name (container env, ConfigMap keys) is a setting of src/config.ts; every Secret key a setting or a variable the bots file names', () => {
    const names = [...(appContainer().env ?? []).map((e) => e.name), ...Object.keys(configMap().data)];
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !isSetting(n))).toEqual([]);
    const refs = envRefsOf(botsConfigMap().data['bots.yaml'] ?? '');
    expect(secretKeys().filter((n) => !isSetting(n) && !refs.includes(n))).toEqual([]);
  });

  it('the Deployment mounts the bots ConfigMap as a directory (no subPath: changes reach the pods), read-only', () => {
    expect(botsMount().subPath, 'a subPath mount never sees a change of the ConfigMap').toBeUndefined();
    expect(botsMount().readOnly).toBe(true);
    expect(botsVolume().configMap?.optional ?? false).toBe(false);
    expect(Object.keys(botsConfigMap().data)).toContain(
      botsFilePath().slice(dirname(botsFilePath()).length + 1),
    );
  });

  it('the bots ConfigMap holds deploy/bots.example.yaml as it is', () => {
    expect(botsConfigMap().data['bots.yaml']).toBe(botsExample);
  });

  it('the Secret gives every variable the bots file names, and the file holds no secret of its own', () => {
    const refs = envRefsOf(botsConfigMap().data['bots.yaml'] ?? '');
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((n) => !secretKeys().includes(n))).toEqual([]);
    const file = parseYamlText(botsExample) as {
      bots: Array<{ id: string; callback: Record<string, string>; dify: Record<string, string> }>;
    };
    for (const bot of file.bots)
      for (const [field, value] of Object.entries({
        'callback.token': bot.callback.token,
        'callback.encodingAesKey': bot.callback.encodingAesKey,
        'dify.apiKey': bot.dify.apiKey,
      }))
        expect(value, `${bot.id}.${field}`).toMatch(/^\$\{[A-Za-z_]\w*\}$/);
  });

  it('the settings the manifests give start the service, with the bots of the mounted file', () => {
    // Without a bots file these three are what the config requires; the manifests give a file instead.
    expect(requiredSettings).toEqual(
      expect.arrayContaining(['WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY', 'DIFY_API_KEY']),
    );
    const literal = Object.fromEntries(
      (appContainer().env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
    );
    // The placeholders filled in: a key of the right shape, or a password in a URL.
    const secrets = Object.fromEntries(
      Object.entries(secret().stringData ?? {}).map(([k, v]) => [
        k,
        v === 'REPLACE_ME' ? 'A'.repeat(43) : v.replace('REPLACE_ME', 'password'),
      ]),
    );
    const env = { ...configMap().data, ...secrets, ...literal, NODE_ID: 'wecom-dify-0' };
    const files: Record<string, string> = Object.fromEntries(
      Object.entries(botsConfigMap().data).map(([key, text]) => [`${botsMount().mountPath}/${key}`, text]),
    );
    const result = parseConfig(env, (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`no ${path}`), { code: 'ENOENT' });
      return text;
    });
    expect(result.ok ? [] : result.problems).toEqual([]);
    if (result.ok) expect(result.config.bots.map((b) => b.id)).toEqual(['hr', 'it']);
  });

  it('secret settings come from the Secret, never from the ConfigMaps or a literal env value', () => {
    const inConfigMap = Object.keys(configMap().data).filter((n) => secretSettings.includes(n));
    const literal = (appContainer().env ?? [])
      .filter((e) => secretSettings.includes(e.name) && e.valueFrom?.secretKeyRef === undefined)
      .map((e) => e.name);
    expect(inConfigMap).toEqual([]);
    expect(literal).toEqual([]);
  });

  it('the kustomization lists every manifest except the Secret template', () => {
    const doc = k8sDocs.find((d) => d.kind === 'Kustomization');
    if (!doc) return;
    const listed = shape(kustomizationSchema, doc.doc, 'kustomization').resources;
    const manifests = k8sDocs
      .filter((d) => d.kind !== 'Kustomization' && d.kind !== 'Secret')
      .map((d) => d.file.slice(k8sDir.length + 1));
    expect([...listed].sort()).toEqual([...new Set(manifests)].sort());
  });
});

// ---- docker-compose.yml ----

const composeService = z.looseObject({
  image: z.string().optional(),
  build: z.union([z.string(), z.looseObject({})]).optional(),
  environment: z
    .union([
      z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
      z.array(z.string()),
    ])
    .optional(),
  env_file: z
    .union([z.string(), z.array(z.union([z.string(), z.looseObject({ path: z.string() })]))])
    .optional(),
  depends_on: z
    .union([z.array(z.string()), z.record(z.string(), z.looseObject({ condition: z.string() }))])
    .optional(),
  healthcheck: z.looseObject({ test: z.union([z.string(), z.array(z.string())]) }).optional(),
  ports: z.array(z.union([z.string(), z.number(), z.looseObject({})])).optional(),
  volumes: z.array(z.union([z.string(), z.looseObject({})])).optional(),
  stop_grace_period: z.string().optional(),
});
const composeSchema = z.looseObject({ services: z.record(z.string(), composeService) });

const composeParsed = parseYaml('docker-compose.yml');
const compose = () => shape(composeSchema, composeParsed.docs[0], 'docker-compose.yml');
const composeNodes = ['node1', 'node2'];
/** Where the compose nodes see the bots file. */
const composeBotsFile = '/etc/wecom-dify/bots.yaml';
const composeEnv = (name: string): Record<string, string> => {
  const env = compose().services[name]?.environment ?? {};
  if (Array.isArray(env))
    return Object.fromEntries(env.map((kv) => [kv.split('=')[0] ?? '', kv.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
};
const seconds = (duration: string) => {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  return m ? Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0) : Number.NaN;
};

describe('docker-compose.yml', () => {
  it('parses as one YAML document with no errors or warnings', () => {
    expect(composeParsed.problems).toEqual([]);
    expect(composeParsed.docs).toHaveLength(1);
    expect(problemsOf(composeSchema, composeParsed.docs[0], 'docker-compose.yml')).toEqual([]);
  });

  it('has redis, mariadb, node1, node2 and lb', () => {
    expect(Object.keys(compose().services)).toEqual(
      expect.arrayContaining(['redis', 'mariadb', ...composeNodes, 'lb']),
    );
    expect(compose().services.redis?.image).toMatch(/^redis:7/);
    expect(compose().services.mariadb?.image).toMatch(/^mariadb:10\.11/);
    expect(compose().services.lb?.image).toMatch(/^nginx:/);
  });

  it('MariaDB creates the wecom_dify database and has a healthcheck', () => {
    const mariadb = compose().services.mariadb;
    expect(composeEnv('mariadb').MARIADB_DATABASE ?? composeEnv('mariadb').MYSQL_DATABASE).toBe('wecom_dify');
    expect(mariadb?.healthcheck).toBeDefined();
  });

  it('the nodes are built from this Dockerfile and have healthchecks', () => {
    for (const node of composeNodes) {
      expect(compose().services[node]?.build, node).toBeDefined();
      expect(compose().services[node]?.healthcheck, node).toBeDefined();
    }
  });

  it('every environment key of the nodes is a setting of src/config.ts', () => {
    for (const node of composeNodes) {
      const names = Object.keys(composeEnv(node));
      expect(names.length, node).toBeGreaterThan(0);
      expect(
        names.filter((n) => !isSetting(n)),
        node,
      ).toEqual([]);
    }
  });

  it('the nodes read their settings from .env and reach Redis and MariaDB by service name', () => {
    for (const node of composeNodes) {
      const envFile = compose().services[node]?.env_file;
      const files = (Array.isArray(envFile) ? envFile : [envFile]).map((f) =>
        typeof f === 'string' ? f : f?.path,
      );
      expect(files, node).toContain('.env');
      expect(composeEnv(node).REDIS_URL, node).toBe('redis://redis:6379');
      expect(composeEnv(node).MYSQL_URL, node).toMatch(/^mysql:\/\/[^@]+@mariadb:3306\/wecom_dify$/);
    }
  });

  it('the nodes mount deploy/bots.example.yaml read-only where .env may point WECOM_BOTS_FILE', () => {
    for (const node of composeNodes) {
      const volumes = compose().services[node]?.volumes ?? [];
      expect(volumes, node).toContain(`./deploy/bots.example.yaml:${composeBotsFile}:ro`);
      // One bot stays the default: the file is read only when .env names it.
      expect(composeEnv(node).WECOM_BOTS_FILE, node).toBeUndefined();
    }
    expect(read('docker-compose.yml')).toContain(`WECOM_BOTS_FILE=${composeBotsFile}`);
    expect(read('.env.example')).toContain(composeBotsFile);
  });

  it('secret settings are not written into the compose file', () => {
    for (const node of composeNodes)
      expect(
        Object.keys(composeEnv(node)).filter((n) => secretSettings.includes(n)),
        node,
      ).toEqual([]);
  });

  it('each node has its own NODE_ID', () => {
    const ids = composeNodes.map((node) => composeEnv(node).NODE_ID);
    expect(ids.every(Boolean)).toBe(true);
    expect(new Set(ids).size).toBe(composeNodes.length);
  });

  it('the nodes wait for redis and mariadb to be healthy', () => {
    for (const node of composeNodes) {
      const deps = compose().services[node]?.depends_on;
      expect(deps && !Array.isArray(deps), `${node} depends_on needs conditions`).toBe(true);
      if (!deps || Array.isArray(deps)) continue;
      expect(deps.redis?.condition, node).toBe('service_healthy');
      expect(deps.mariadb?.condition, node).toBe('service_healthy');
    }
  });

  it('the nodes get longer than DRAIN_SECONDS to stop', () => {
    for (const node of composeNodes) {
      const grace = seconds(compose().services[node]?.stop_grace_period ?? '10s');
      expect(grace, node).toBeGreaterThan(Number(composeEnv(node).DRAIN_SECONDS ?? defaultDrainSeconds));
    }
  });

  it('the lb publishes a port, mounts deploy/nginx.conf and depends on both nodes', () => {
    const lb = compose().services.lb;
    expect(lb?.ports?.length).toBeGreaterThan(0);
    expect(lb?.volumes?.some((v) => typeof v === 'string' && v.startsWith('./deploy/nginx.conf:'))).toBe(
      true,
    );
    const deps = lb?.depends_on;
    const depNames = Array.isArray(deps) ? deps : Object.keys(deps ?? {});
    expect(depNames).toEqual(expect.arrayContaining(composeNodes));
  });
});

// ---- deploy/nginx.conf ----

const nginx = read('deploy/nginx.conf')
  .split('\n')
  .map((line) => line.replace(/#.*$/, ''))
  .join('\n');
const directive = (name: string) =>
  [...nginx.matchAll(new RegExp(`(?:^|[;{}\\s])${name}\\s+([^;]+);`, 'g'))].map((m) => (m[1] ?? '').trim());

describe('deploy/nginx.conf', () => {
  it('the upstream servers are the compose node services on the app port', () => {
    const upstream = /upstream\s+\w+\s*\{([^}]*)\}/.exec(nginx)?.[1] ?? '';
    const servers = [...upstream.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((m) => m[1]);
    expect(servers.sort()).toEqual(composeNodes.map((n) => `${n}:8080`).sort());
    for (const server of servers) expect(Object.keys(compose().services)).toContain(server?.split(':')[0]);
  });

  it('balances without sticky sessions (any node answers)', () => {
    expect(nginx).not.toMatch(/\b(ip_hash|sticky|hash\s+\$)/);
  });

  it('turns proxy buffering off both ways', () => {
    expect(directive('proxy_buffering')).toEqual(['off']);
    expect(directive('proxy_request_buffering')).toEqual(['off']);
  });

  it("limits bodies to 1m, the app's body limit", () => {
    expect(directive('client_max_body_size')).toEqual(['1m']);
  });

  it('sets connect, send and read timeouts', () => {
    for (const name of ['proxy_connect_timeout', 'proxy_send_timeout', 'proxy_read_timeout'])
      expect(directive(name).length, name).toBeGreaterThan(0);
  });

  it('forwards X-Forwarded-For and X-Request-Id and keeps connections to the nodes alive', () => {
    const headers = directive('proxy_set_header').map((h) => h.split(/\s+/)[0]?.toLowerCase());
    expect(headers).toEqual(expect.arrayContaining(['x-forwarded-for', 'x-request-id', 'connection']));
    expect(directive('proxy_http_version')).toContain('1.1');
    expect(directive('keepalive').length).toBeGreaterThan(0);
  });

  it('proxies the routes the service has', () => {
    const locations = [...nginx.matchAll(/location\s+(?:=\s*)?(\S+)\s*\{/g)].map((m) => m[1]);
    expect(locations).toEqual(expect.arrayContaining(['/wecom/', '/healthz', '/readyz']));
  });
});

// ---- Dockerfile ----

interface Instruction {
  keyword: string;
  args: string;
}
/** Dockerfile instructions with comments dropped and continuation lines joined. */
function dockerInstructions(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    if (raw.trimEnd().endsWith('\\')) {
      current += `${raw.trimEnd().slice(0, -1)} `;
      continue;
    }
    current += raw;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  return logical.map((line) => {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    return { keyword: keyword.toUpperCase(), args };
  });
}
const dockerfile = dockerInstructions(read('Dockerfile'));
/** The instructions of each stage, from its FROM. */
const stages = dockerfile.reduce<Instruction[][]>((all, ins) => {
  if (ins.keyword === 'FROM') all.push([ins]);
  else all.at(-1)?.push(ins);
  return all;
}, []);
const runtimeStage = stages.at(-1) ?? [];
const argDefaults = Object.fromEntries(
  dockerfile
    .filter((i) => i.keyword === 'ARG' && i.args.includes('='))
    .map((i) => [i.args.split('=')[0] ?? '', i.args.split('=').slice(1).join('=')]),
);
const baseImage = (from: Instruction) =>
  (from.args.split(/\s+/)[0] ?? '').replace(
    /^\$\{?(\w+)\}?$/,
    (_, name: string) => argDefaults[name] ?? name,
  );

describe('Dockerfile', () => {
  it('is multi-stage: a build stage compiles with npm ci + npm run build, production deps come from npm ci --omit=dev', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const runs = (stage: Instruction[]) => stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const build = stages.find((s) => runs(s).some((r) => r.includes('npm run build')));
    expect(build, 'a stage runs npm run build').toBeDefined();
    expect(runs(build ?? []).some((r) => /npm ci(?!.*--omit=dev)/.test(r))).toBe(true);
    expect(stages.some((s) => runs(s).some((r) => /npm ci\b.*--omit=dev/.test(r)))).toBe(true);
    expect(
      runs(runtimeStage).some((r) => r.includes('npm run build')),
      'no compiler in the runtime stage',
    ).toBe(false);
  });

  it('the production install (npm ci --omit=dev) gets no TypeScript toolchain: tsx and typescript are dev dependencies', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { dependencies?: Record<string, string>; dev?: boolean }>;
    };
    for (const tool of ['tsx', 'typescript']) {
      expect(Object.keys(pkg.dependencies), `package.json dependencies: ${tool}`).not.toContain(tool);
      expect(Object.keys(lock.packages['']?.dependencies ?? {}), `lock dependencies: ${tool}`).not.toContain(
        tool,
      );
      expect(lock.packages[`node_modules/${tool}`]?.dev, `${tool} is dev-only in the lock`).toBe(true);
    }
  });

  it('the build stage has every local file `npm run build` runs (e.g. scripts/copy-assets.mjs)', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const needed = [...pkg.scripts.build!.matchAll(/\b(scripts|src|bench)\/[\w./-]+/g)].map((m) => m[1]!);
    const build =
      stages.find((st) => st.some((i) => i.keyword === 'RUN' && i.args.includes('npm run build'))) ?? [];
    const copied = build.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    for (const dir of needed)
      expect(
        copied.some((c) => c.split(/\s+/).includes(dir)),
        `COPY ${dir}`,
      ).toBe(true);
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const dir of needed) expect(ignored, `${dir} is in the build context`).not.toContain(dir);
  });

  it('runs on a Node 20 slim or alpine image', () => {
    const from = runtimeStage[0];
    expect(from && baseImage(from)).toMatch(/^node:20[.\d]*-(slim|alpine)/);
  });

  it('runs as a non-root user', () => {
    const user = runtimeStage.filter((i) => i.keyword === 'USER').at(-1)?.args;
    expect(user, 'USER in the runtime stage').toBeDefined();
    expect(user?.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('sets NODE_ENV=production and exposes 8080', () => {
    const env = runtimeStage.filter((i) => i.keyword === 'ENV').map((i) => i.args);
    expect(env.some((e) => /\bNODE_ENV[= ]production\b/.test(e))).toBe(true);
    // The heap's limit and its young generation (docs/operations.md, "Sizing").
    const nodeOptions = env.join(' ').match(/NODE_OPTIONS="([^"]*)"/)?.[1] ?? '';
    expect(nodeOptions.split(' ').sort()).toEqual(['--max-old-space-size=512', '--max-semi-space-size=32']);
    expect(runtimeStage.filter((i) => i.keyword === 'EXPOSE').map((i) => i.args)).toContain('8080');
  });

  it('has a HEALTHCHECK that asks /healthz with node itself (no curl in slim images)', () => {
    const check = runtimeStage.find((i) => i.keyword === 'HEALTHCHECK')?.args ?? '';
    expect(check).toMatch(/\bCMD\b/);
    expect(check).toContain('/healthz');
    expect(check).toMatch(/\bnode\b/);
    expect(check).not.toMatch(/\b(curl|wget)\b/);
  });

  it('starts node dist/cli/main.js serve in exec form, so SIGTERM reaches node', () => {
    const cmd = runtimeStage.filter((i) => i.keyword === 'CMD').at(-1)?.args ?? '';
    // node's own flags between: the heap's growth, which NODE_OPTIONS cannot carry.
    expect(JSON.parse(cmd)).toEqual(['node', '--heap-growing-percent=100', 'dist/cli/main.js', 'serve']);
    const entrypoint = runtimeStage.find((i) => i.keyword === 'ENTRYPOINT');
    if (entrypoint) expect(entrypoint.args.startsWith('['), 'ENTRYPOINT in exec form').toBe(true);
    const stop = runtimeStage.find((i) => i.keyword === 'STOPSIGNAL')?.args;
    expect(stop ?? 'SIGTERM').toBe('SIGTERM');
  });

  it('.dockerignore keeps .env, node_modules and dist out of the build context', () => {
    expect(existsSync(join(root, '.dockerignore'))).toBe(true);
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.env', 'node_modules', 'dist']));
  });
});

// ---- Prometheus alert rules and deploy/METRICS.md ----

/** `name → labels` from the table in deploy/METRICS.md. */
const documentedMetrics = new Map(
  [...read('deploy/METRICS.md').matchAll(/^\|\s*`(wecom_dify_[a-z_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|/gm)].map(
    (m) => [
      m[1] ?? '',
      { type: m[2] ?? '', labels: [...(m[3] ?? '').matchAll(/`(\w+)`/g)].map((l) => l[1] ?? '') },
    ],
  ),
);
/** The metric an alert names, with a histogram's series suffix taken off. */
const baseMetric = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

const alertRule = z.strictObject({
  alert: z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/),
  expr: z.string().min(1),
  for: z
    .string()
    .regex(/^\d+[smhd]$/)
    .optional(),
  keep_firing_for: z.string().optional(),
  labels: z.looseObject({ severity: z.enum(['critical', 'warning', 'info']) }),
  annotations: z.looseObject({ summary: z.string().min(1), description: z.string().optional() }),
});
const rulesSchema = z.strictObject({
  groups: z
    .array(
      z.looseObject({
        name: z.string().min(1),
        rules: z.array(alertRule).min(1),
      }),
    )
    .min(1),
});
const alertsParsed = parseYaml('deploy/prometheus-alerts.yml');
const alertRules = () =>
  shape(rulesSchema, alertsParsed.docs[0], 'deploy/prometheus-alerts.yml').groups.flatMap((g) => g.rules);

describe('deploy/METRICS.md', () => {
  it('lists exactly the metrics the service registers, each with its type and labels', async () => {
    const registry = createMetrics({ defaults: false }).registry;
    // prom-client keeps a metric's label names on the metric object, without a type for them.
    const labelsOf = (name: string) => [
      ...((registry.getSingleMetric(name) as { labelNames?: string[] } | undefined)?.labelNames ?? []),
    ];
    const registered = (await registry.getMetricsAsJSON()).map((m) => [
      m.name,
      { type: m.type, labels: labelsOf(m.name).sort() },
    ]);
    const documented = [...documentedMetrics].map(([name, m]) => [
      name,
      { type: m.type, labels: [...m.labels].sort() },
    ]);
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(registered));
  });
});

describe('deploy/prometheus-alerts.yml', () => {
  it('parses as YAML with no errors or warnings', () => {
    expect(alertsParsed.problems).toEqual([]);
    expect(alertsParsed.docs).toHaveLength(1);
  });

  it('is a rule file: groups of alerts, each with expr, severity and summary', () => {
    expect(problemsOf(rulesSchema, alertsParsed.docs[0], 'deploy/prometheus-alerts.yml')).toEqual([]);
  });

  it('alert names are unique', () => {
    const names = alertRules().map((r) => r.alert);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('every expr names only metrics listed in deploy/METRICS.md', () => {
    const unknown = alertRules().flatMap((r) =>
      [...r.expr.matchAll(/wecom_dify_[a-z_]+/g)]
        .map((m) => baseMetric(m[0]))
        .filter((name) => !documentedMetrics.has(name))
        .map((name) => `${r.alert}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  it('every label matcher on a wecom_dify metric is a label METRICS.md lists for it', () => {
    const wrong = alertRules().flatMap((r) =>
      [...r.expr.matchAll(/(wecom_dify_[a-z_]+)\{([^}]*)\}/g)].flatMap((m) => {
        const metric = documentedMetrics.get(baseMetric(m[1] ?? ''));
        const allowed = [...(metric?.labels ?? []), ...(m[1]?.endsWith('_bucket') ? ['le'] : [])];
        return [...(m[2] ?? '').matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)]
          .map((l) => l[1] ?? '')
          .filter((label) => !allowed.includes(label))
          .map((label) => `${r.alert}: ${m[1]}{${label}}`);
      }),
    );
    expect(wrong).toEqual([]);
  });

  it('brackets balance in every expr', () => {
    for (const r of alertRules()) {
      for (const [open, close] of [
        ['(', ')'],
        ['{', '}'],
        ['[', ']'],
      ] as const)
        expect(r.expr.split(open).length, `${r.alert} ${open}${close}`).toBe(r.expr.split(close).length);
    }
  });

  it('alerts on what matters: readiness, callbacks, polls, failed streams, first token, Dify, Redis, token service, stuck streams, deliveries, long connections', () => {
    const exprs = alertRules()
      .map((r) => r.expr)
      .join('\n');
    for (const needed of [
      'kube_pod_status_ready',
      'wecom_dify_callbacks_total',
      'wecom_dify_poll_duration_seconds_bucket',
      'wecom_dify_streams_finished_total{state="error"}',
      'wecom_dify_first_token_seconds_bucket',
      'wecom_dify_dify_errors_total',
      'wecom_dify_store_errors_total',
      'wecom_dify_token_service_requests_total',
      'wecom_dify_inflight_answers',
      'wecom_dify_takeovers_total',
      'wecom_dify_deliveries_total',
      'wecom_dify_connection_up',
      'outcome="kicked"',
    ])
      expect(exprs, needed).toContain(needed);
  });
});
