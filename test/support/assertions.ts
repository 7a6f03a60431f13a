// Finds tests that cannot fail on a wrong outcome: a test whose body, and every helper it calls that can
// be found (in its own file and the files it imports by relative path), never reaches an assertion, or
// whose only assertions say that something did not throw. Syntax only, so it runs in a second: a helper
// is matched by name, which errs on the side of counting a test as asserting.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export interface Finding {
  file: string;
  line: number;
  name: string;
  problem: 'no assertion' | 'only asserts that nothing throws';
}

/** An assertion is a call of `expect…` or `assert…` (vitest's `expect`, `expect.poll`, a helper's `assertX`). */
const assertionName = /^(expect|assert)/;

interface ParsedFile {
  source: ts.SourceFile;
  /** Functions by name: declarations, `const f = () => …`, object and class methods. */
  functions: Map<string, ts.Node[]>;
  imports: string[];
}

const parsed = new Map<string, ParsedFile>();

function parse(path: string): ParsedFile {
  const known = parsed.get(path);
  if (known) return known;
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const functions = new Map<string, ts.Node[]>();
  const add = (name: ts.Node | undefined, body: ts.Node | undefined): void => {
    if (!name || !body || !(ts.isIdentifier(name) || ts.isStringLiteral(name))) return;
    functions.set(name.text, [...(functions.get(name.text) ?? []), body]);
  };
  const imports: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) add(node.name, node);
    else if (
      (ts.isVariableDeclaration(node) || ts.isPropertyAssignment(node) || ts.isPropertyDeclaration(node)) &&
      node.initializer &&
      (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))
    )
      add(node.name, node.initializer);
    else if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const spec = node.moduleSpecifier.text;
      if (spec.startsWith('.')) {
        const file = resolve(dirname(path), spec.replace(/\.js$/, '.ts'));
        if (existsSync(file)) imports.push(file);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const result = { source, functions, imports };
  parsed.set(path, result);
  return result;
}

/** The files whose functions a test in `path` may call: itself and what it imports, transitively. */
function reachable(path: string, seen = new Set<string>()): Set<string> {
  if (seen.has(path)) return seen;
  seen.add(path);
  for (const file of parse(path).imports) reachable(file, seen);
  return seen;
}

/** The name a call is made by: `f(…)` → f, `a.b.f(…)` → f. */
function calleeName(call: ts.CallExpression): string | undefined {
  const callee = call.expression;
  if (ts.isIdentifier(callee)) return callee.text;
  if (ts.isPropertyAccessExpression(callee)) return callee.name.text;
  return undefined;
}

/** The root identifier of a call chain: `expect(x).not.toThrow()` → expect. */
function chainRoot(node: ts.Expression): ts.Expression {
  let current = node;
  for (;;) {
    if (ts.isCallExpression(current) || ts.isPropertyAccessExpression(current)) current = current.expression;
    else if (ts.isAwaitExpression(current) || ts.isParenthesizedExpression(current))
      current = current.expression;
    else return current;
  }
}

/** `…not.toThrow()`, `…resolves.not.toThrow()`: an assertion that says only "it did not throw". */
function saysOnlyNoThrow(call: ts.CallExpression): boolean {
  const text = call.getText();
  return /\.not\s*\.\s*toThrow\w*\(\s*\)$/.test(text) || /\.resolves\s*\.\s*toBeUndefined\(\s*\)$/.test(text);
}

interface Reach {
  asserts: boolean;
  meaningful: boolean;
}

/** What a function reaches, per scope of files: each function is walked once. */
const reached = new WeakMap<Set<string>, Map<ts.Node, Reach>>();

function reach(body: ts.Node, files: Set<string>, visiting: Set<ts.Node>): Reach {
  const memo = reached.get(files) ?? new Map<ts.Node, Reach>();
  reached.set(files, memo);
  const known = memo.get(body);
  if (known) return known;
  const found: Reach = { asserts: false, meaningful: false };
  if (visiting.has(body)) return found;
  visiting.add(body);
  const visit = (node: ts.Node): void => {
    if (found.meaningful) return;
    // A function defined here runs only when called, and a call is followed by the function's name.
    if (node !== body && definesFunction(node)) return;
    if (ts.isCallExpression(node)) {
      const root = chainRoot(node);
      const rootName = ts.isIdentifier(root) ? root.text : undefined;
      // The outermost call of an `expect(…)…` chain: judge the whole chain once.
      const outermost = !(
        ts.isPropertyAccessExpression(node.parent) ||
        (ts.isCallExpression(node.parent) && node.parent.expression === node)
      );
      if (rootName && assertionName.test(rootName) && outermost) {
        found.asserts = true;
        if (!saysOnlyNoThrow(node)) found.meaningful = true;
      }
      const name = calleeName(node);
      if (name && !(rootName === name && assertionName.test(name))) {
        for (const file of files) {
          for (const fn of parse(file).functions.get(name) ?? []) {
            const inner = reach(fn, files, visiting);
            found.asserts ||= inner.asserts;
            found.meaningful ||= inner.meaningful;
          }
        }
      }
      // A function passed by name (`items.forEach(check)`, `it('…', scenario)`) runs too.
      for (const arg of node.arguments) {
        if (!ts.isIdentifier(arg)) continue;
        for (const file of files) {
          for (const fn of parse(file).functions.get(arg.text) ?? []) {
            const inner = reach(fn, files, visiting);
            found.asserts ||= inner.asserts;
            found.meaningful ||= inner.meaningful;
          }
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(body);
  visiting.delete(body);
  memo.set(body, found);
  return found;
}

function definesFunction(node: ts.Node): boolean {
  if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) return true;
  return (
    (ts.isVariableDeclaration(node) || ts.isPropertyAssignment(node) || ts.isPropertyDeclaration(node)) &&
    node.initializer !== undefined &&
    (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))
  );
}

/** `it(…)`, `test(…)`, `it.each(…)(…)`, `it.skipIf(…)(…)`, `it.concurrent(…)`: a test's definition. */
function isTestCall(call: ts.CallExpression): boolean {
  let callee: ts.Expression = call.expression;
  while (ts.isPropertyAccessExpression(callee) || ts.isCallExpression(callee)) callee = callee.expression;
  if (!ts.isIdentifier(callee) || !['it', 'test'].includes(callee.text)) return false;
  // Not `it.each(table)` itself (its result is the call that takes the test), nor `it.skip`/`it.todo`.
  const text = call.expression.getText();
  if (/\.(skip|todo)\b/.test(text)) return false;
  return call.arguments
    .slice(1)
    .some((arg) => ts.isArrowFunction(arg) || ts.isFunctionExpression(arg) || ts.isIdentifier(arg));
}

function testName(call: ts.CallExpression): string {
  const first = call.arguments[0];
  if (first && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first))) return first.text;
  return first?.getText() ?? '?';
}

export function findUnassertedTests(root: string, dirs: string[]): Finding[] {
  const findings: Finding[] = [];
  const files = dirs.flatMap((dir) => listTs(join(root, dir)));
  for (const path of files) {
    const { source } = parse(path);
    if (!/from ['"]vitest['"]/.test(source.text)) continue;
    const scope = reachable(path);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && isTestCall(node)) {
        // The test's function: after its name, before any timeout or options.
        const body = node.arguments
          .slice(1)
          .find((arg) => ts.isArrowFunction(arg) || ts.isFunctionExpression(arg) || ts.isIdentifier(arg));
        if (body) {
          let target: ts.Node[] = [body];
          if (ts.isIdentifier(body))
            target = [...scope].flatMap((f) => parse(f).functions.get(body.text) ?? []);
          const result = target
            .map((t) => reach(t, scope, new Set()))
            .reduce(
              (a, b) => ({ asserts: a.asserts || b.asserts, meaningful: a.meaningful || b.meaningful }),
              {
                asserts: false,
                meaningful: false,
              },
            );
          if (!result.meaningful) {
            findings.push({
              file: relative(root, path),
              line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1,
              name: testName(node),
              problem: result.asserts ? 'only asserts that nothing throws' : 'no assertion',
            });
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return findings;
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}
