/**
 * The TSDoc examples of the processing layer are code: this runs them, so an example that rots (a renamed option, a
 * changed result, an undeclared variable) fails here instead of misleading a reader.
 *
 * For each ```ts block in the TSDoc of the files below:
 * - it must be self-contained: import what it uses from 'shardflow' (the package's public entry);
 * - unless it needs a server, a cluster, files or a module of its own (see `needsOutside`), it is transpiled and run
 *   with `import ... from 'shardflow'` bound to src/index.ts;
 * - a line `expr; // value` whose comment starts with a JS literal checks that `expr` equals it (`toEqual`), and a line
 *   `expr; // throws SomeError: message` checks that `expr` throws that. Comments that are prose are left alone.
 *
 * It also checks that every export of src/processing/index.ts has TSDoc with an `@example` (but the few known gaps
 * in files this suite does not own, listed in KNOWN_GAPS).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as shardflow from '../../src/index.js';

const ROOT = join(import.meta.dirname, '../..');
const PROCESSING = join(ROOT, 'src/processing');

/** Files whose examples must be self-contained and are run. */
const FILES = [
  'index.ts',
  'pipeline.ts',
  'keyed-stream.ts',
  'windows.ts',
  'units.ts',
  'triggers.ts',
  'plan.ts',
  'state.ts',
  'storage-state.ts',
  'metrics.ts',
  'outputs.ts',
  'job.ts',
  'job-handle.ts',
  'runner.ts',
  'connectors/types.ts',
  'connectors/files.ts',
  'connectors/memory.ts',
  'connectors/generator.ts',
  'connectors/stdout.ts',
  'connectors/http-ingest.ts',
  'connectors/redis-streams.ts',
  'connectors/jetstream.ts',
  'connectors/namespace-sink.ts',
  'connectors/webhook.ts',
];

/** Exports of src/processing/index.ts documented in files other teams own, without an `@example` yet: none now. */
const KNOWN_GAPS = new Set<string>([]);

interface Example {
  file: string;
  line: number;
  code: string;
}

/** The ```ts blocks of the TSDoc comments of `file`, with the line each starts on. */
function examplesOf(file: string): Example[] {
  const text = readFileSync(join(PROCESSING, file), 'utf8');
  const out: Example[] = [];
  for (const doc of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const lines = doc[0].split('\n').map((l) => l.replace(/^\s*\/?\*+\/?\s?/, '').replace(/\s*\*\/$/, ''));
    const docLine = text.slice(0, doc.index).split('\n').length;
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.trim() !== '```ts') continue;
      const end = lines.indexOf('```', i + 1);
      if (end < 0) throw new Error(`${file}:${docLine + i}: a \`\`\`ts block is not closed`);
      out.push({ file, line: docLine + i + 1, code: lines.slice(i + 1, end).join('\n') });
      i = end;
    }
  }
  return out;
}

/** Why an example cannot run here (it needs a server, a cluster, files, or is a module of its own). */
function needsOutside(code: string): string | undefined {
  if (/\bconnect\(/.test(code)) return 'a cluster';
  if (/\b(httpIngest|redisStreams|jetStreamSource|namespaceSink|webhook)\b\s*[<(]/.test(code)) return 'a server';
  if (/\b(textLines|ndjson|ndjsonFile|csv|files|loadJob)\b\s*[<(]/.test(code)) return 'files';
  if (/^export\b|import\.meta/m.test(code)) return 'a module of its own';
  return undefined;
}

/** The JS value of `src`, when it is a literal (not prose or names): `{ ok: false }` otherwise. */
function literal(src: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: new Function(`"use strict"; return (${src});`)() };
  } catch {
    return { ok: false };
  }
}

/**
 * The JS literal a comment starts with, followed by nothing or by `:`, `,` or `(` and prose (`[1, 2]: the rest` →
 * `[1, 2]`); undefined for prose (`0 1 2`, `about 200`).
 */
function leadingLiteral(comment: string): string | undefined {
  if (!/^[[{'"\d-]|^(true|false|null|undefined)\b/.test(comment)) return undefined;
  for (let end = comment.length; end > 0; end--) {
    if (end < comment.length && !/^\s*[:,(]/.test(comment.slice(end))) continue;
    const src = comment.slice(0, end).trim();
    if (literal(src).ok) return src;
  }
  return undefined;
}

const STATEMENT = /^(\s*)(?!(?:const|let|var|import|export|for|if|return)\b)([^\s.})\]/][^;]*);\s*\/\/\s*(.*)$/;

/** Turns `expr; // value` and `expr; // throws E: msg` lines into checks. */
function withChecks(code: string): { code: string; checks: number } {
  let checks = 0;
  const lines = code.split('\n').map((line) => {
    const m = STATEMENT.exec(line);
    if (!m) return line;
    const [, indent, expr, comment] = m as unknown as [string, string, string, string];
    const at = JSON.stringify(line.trim());
    const thrown = /^throws\s+(\w+)(?::\s*(.*))?$/.exec(comment);
    if (thrown) {
      checks++;
      return `${indent}await __throws(async () => (${expr}), ${JSON.stringify(thrown[1])}, ${JSON.stringify(thrown[2] ?? '')}, ${at});`;
    }
    const value = leadingLiteral(comment);
    if (value === undefined) return line;
    checks++;
    return `${indent}await __equals(async () => (${expr}), ${JSON.stringify(value)}, ${at});`;
  });
  return { code: lines.join('\n'), checks };
}

const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<void>;

/** Transpiles an example and runs it, its `import`s bound to the modules in `modules`. */
async function run(example: Example): Promise<number> {
  const { code, checks } = withChecks(example.code);
  const js = ts.transpileModule(code, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: false },
    reportDiagnostics: true,
    fileName: `${example.file}:${example.line}.ts`,
  });
  const syntax = js.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')) ?? [];
  expect(syntax, 'the example does not parse').toEqual([]);
  const modules: Record<string, unknown> = { shardflow };
  const body = await replaceAsync(js.outputText, /^import\s*\{([^}]*)\}\s*from\s*['"]([^'"]+)['"];?$/gm, async (_m, names: string, spec: string) => {
    modules[spec] ??= await import(spec);
    const bound = names
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean)
      .map((n) => n.replace(/^(\w+)\s+as\s+(\w+)$/, '$1: $2'));
    return `const { ${bound.join(', ')} } = __modules[${JSON.stringify(spec)}];`;
  });
  expect(body, 'only `import { ... } from` imports are supported').not.toMatch(/^\s*import\s/m);
  // An example whose imports are all types transpiles to a module with `export {};`: not a statement of a function.
  const statements = body.replace(/^export \{\};?$/m, '');
  await new AsyncFunction('__modules', '__equals', '__throws', statements)(modules, equals, throws);
  return checks;
}

async function equals(actual: () => Promise<unknown>, expected: string, at: string): Promise<void> {
  const value = literal(expected);
  if (!value.ok) throw new Error(`not a literal: ${expected}`);
  expect(await actual(), at).toEqual(value.value);
}

async function throws(fn: () => Promise<unknown>, name: string, message: string, at: string): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  expect(error, `${at} should throw`).toBeInstanceOf(Error);
  const names: string[] = [];
  for (let p = Object.getPrototypeOf(error); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) names.push(p.constructor.name);
  expect(names, at).toContain(name);
  if (message) expect((error as Error).message, at).toContain(message);
}

async function replaceAsync(text: string, re: RegExp, fn: (...m: string[]) => Promise<string>): Promise<string> {
  const parts: Array<string | Promise<string>> = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    parts.push(text.slice(last, m.index), fn(...(m as unknown as string[])));
    last = m.index! + m[0].length;
  }
  parts.push(text.slice(last));
  return (await Promise.all(parts)).join('');
}

const examples = FILES.flatMap(examplesOf);

describe('processing TSDoc examples', () => {
  it('are found', () => {
    expect(examplesOf('pipeline.ts').length + examplesOf('keyed-stream.ts').length).toBeGreaterThanOrEqual(20);
  });

  it('import what they use from the public entry', () => {
    const bad = examples.filter((e) => !/from 'shardflow';/.test(e.code)).map((e) => `${e.file}:${e.line}`);
    expect(bad).toEqual([]);
  });

  const runnable = examples.filter((e) => needsOutside(e.code) === undefined);
  it.each(runnable.map((e) => [`${e.file}:${e.line}`, e] as const))('%s runs as written', async (_name, example) => {
    await run(example);
  });

  it('run, with some results checked', async () => {
    let checks = 0;
    for (const e of runnable) checks += withChecks(e.code).checks;
    expect(runnable.length).toBeGreaterThanOrEqual(50);
    expect(checks).toBeGreaterThanOrEqual(40);
  });
});

describe('the exports of src/processing/index.ts', () => {
  /** Every exported name, found by reading the export lists. */
  function exportedNames(): string[] {
    const text = readFileSync(join(PROCESSING, 'index.ts'), 'utf8');
    const names: string[] = [];
    for (const m of text.matchAll(/^export (?:type )?\{([^}]*)\}/gm))
      for (const part of m[1]!.split(',')) {
        const name = part.trim().replace(/^type\s+/, '');
        if (name) names.push(name);
      }
    return names;
  }

  function sourceFiles(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
      d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
    );
  }

  it('have TSDoc with an @example', () => {
    const files = sourceFiles(PROCESSING).map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    const missing: string[] = [];
    for (const name of exportedNames()) {
      const decl = new RegExp(`^export (?:declare )?(?:async )?(?:function\\*?|class|const|let|interface|type) ${name}\\b`, 'm');
      const home = files.find((f) => decl.test(f.text));
      if (!home) {
        missing.push(`${name}: declaration not found`);
        continue;
      }
      const before = home.text.slice(0, decl.exec(home.text)!.index).trimEnd();
      const doc = before.endsWith('*/') ? before.slice(before.lastIndexOf('/**')) : '';
      if (!doc.includes('@example') && !KNOWN_GAPS.has(name)) missing.push(`${name} (${relative(ROOT, home.path)})`);
    }
    expect(missing).toEqual([]);
    expect(exportedNames().length).toBeGreaterThan(80);
  });
});
