// The manifests in deploy/kubernetes checked against the schemas generated from the Kubernetes API, as
// the package kubernetes-models ships them, offline: each object's `validate()` (the API's JSON schema:
// types, required fields, formats), and, because that schema lets through keys it does not know, the
// TypeScript compiler with the package's own types, which refuses any key no type has (a misspelt
// `readinesProbe` would be no probe at all, and the API server drops it without a word).
// Needs the dev dependency kubernetes-models; kubernetesSchema.ts chooses this file once it is there.
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Manifest } from './kubernetesSchema.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** Where the generated source seems to live: in the repository, so that its imports resolve. */
const virtualFile = `${root}kubernetes-manifests.generated.ts`;

interface TypeMeta {
  apiVersion: string;
  kind: string;
}

const typeMeta = (doc: unknown): TypeMeta | undefined => {
  const { apiVersion, kind } = (doc ?? {}) as Partial<Record<keyof TypeMeta, unknown>>;
  return typeof apiVersion === 'string' && typeof kind === 'string' ? { apiVersion, kind } : undefined;
};

/** The package's module of a kind: `apps/v1` `Deployment` → `kubernetes-models/apps/v1/Deployment`. */
const moduleOf = ({ apiVersion, kind }: TypeMeta): string => `kubernetes-models/${apiVersion}/${kind}`;

/** The package's own validation of one object. */
async function validated(manifest: Manifest, meta: TypeMeta): Promise<string[]> {
  let Model: new (data: unknown) => { validate(): void };
  try {
    Model = ((await import(moduleOf(meta))) as Record<string, typeof Model>)[meta.kind]!;
    if (typeof Model !== 'function') throw new Error(`no export ${meta.kind}`);
  } catch (error) {
    return [`${manifest.where}: kubernetes-models has no ${meta.apiVersion} ${meta.kind}: ${String(error)}`];
  }
  try {
    new Model(manifest.doc).validate();
    return [];
  } catch (error) {
    return [`${manifest.where}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

/**
 * Every object as a typed constant, `const m0: IDeployment = {…}`, compiled: TypeScript refuses a key
 * its type does not have, a string where a number belongs, a value outside an enum. (It reports the
 * first problem of each object: fix it and run again for the next.)
 */
function typeChecked(manifests: Array<{ manifest: Manifest; meta: TypeMeta }>): string[] {
  const declarations = manifests.map(({ manifest, meta }, i) => {
    const json = JSON.stringify(manifest.doc, null, 2);
    return `import type { I${meta.kind} as T${i} } from '${moduleOf(meta)}';\nexport const m${i}: T${i} = ${json};\n`;
  });
  const starts: number[] = [];
  let source = '';
  for (const declaration of declarations) {
    starts.push(source.length);
    source += declaration;
  }
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === virtualFile
      ? ts.createSourceFile(name, source, language, true)
      : getSourceFile(name, language, ...rest);
  host.fileExists = (name) => name === virtualFile || fileExists(name);
  const program = ts.createProgram([virtualFile], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.file?.fileName !== virtualFile || d.start === undefined) return message;
    const index = starts.findLastIndex((s) => s <= d.start!);
    const line = source.slice(source.lastIndexOf('\n', d.start) + 1, source.indexOf('\n', d.start)).trim();
    return `${manifests[index]?.manifest.where ?? '?'}: ${message} (at ${line})`;
  });
}

/** Every way the manifests depart from the Kubernetes API's schemas, one line each. */
export async function kubernetesProblems(manifests: Manifest[]): Promise<string[]> {
  const typed: Array<{ manifest: Manifest; meta: TypeMeta }> = [];
  const problems: string[] = [];
  for (const manifest of manifests) {
    const meta = typeMeta(manifest.doc);
    if (!meta) problems.push(`${manifest.where}: no apiVersion and kind`);
    else typed.push({ manifest, meta });
  }
  for (const { manifest, meta } of typed) problems.push(...(await validated(manifest, meta)));
  return [...problems, ...typeChecked(typed)];
}
