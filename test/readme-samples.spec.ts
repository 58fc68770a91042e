/**
 * The TypeScript samples of the user-facing docs compile against the package's real API, and the
 * README's options table and demo settings name what the code has.
 *
 * Which blocks: every ```ts / ```typescript fence in the repository's markdown files (README.md
 * and any doc added later), except under bench/ and in docs/PROTOCOL.md. Each block is its own ES
 * module (top-level await works, as in an app's main.ts), typechecked with tsconfig.json's
 * compiler options and `noEmit`, all in one ts.Program. The package's own import names
 * ('nest-realtime', 'nest-realtime/client', ...) resolve to src/ through `paths` built from
 * package.json's "exports" (dist/x/index.js -> src/x/index.ts).
 *
 * Markers, as an HTML comment right before the fence (blank lines in between are fine; only the
 * comment nearest the fence counts, so a block has one marker):
 *
 *   <!-- sample: skip (why) -->   a fragment that is not meant to compile; say why.
 *
 *   <!-- sample: prelude          TypeScript put before the block: the application's own names
 *   declare const client: X;      the sample uses (`auth`, `render`, a `client` made earlier).
 *   -->                           The package's API belongs in the sample's own imports.
 *
 * A failure names the markdown file, the line and the compiler's diagnostic.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { REALTIME_DEFAULTS } from '../src/realtime/realtime-options.js';

/** The repository: the nearest directory up with package.json and tsconfig.json (src or build). */
const ROOT = ((start: string): string => {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tsconfig.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
})(dirname(fileURLToPath(import.meta.url)));

const SKIPPED_DIRS = new Set(['node_modules', 'build', 'dist', 'bench']);
const SKIPPED_FILES = new Set(['docs/PROTOCOL.md']);

interface Sample {
  /** Markdown file, relative to the repository. */
  doc: string;
  /** Line of the opening fence (1-based). */
  line: number;
  /** Virtual path of the module the sample becomes. */
  fileName: string;
  text: string;
  /** Markdown line of each line of `text`. */
  lines: number[];
  skip?: string;
}

function markdownFiles(dir = ROOT): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && !SKIPPED_DIRS.has(entry.name)) {
        found.push(...markdownFiles(path));
      }
    } else if (entry.name.endsWith('.md') && !SKIPPED_FILES.has(relative(ROOT, path))) {
      found.push(path);
    }
  }
  return found.sort();
}

const FENCE_OPEN = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/;
const MARKER = /^<!--\s*sample:\s*(\w+)/;

function extractSamples(path: string): Sample[] {
  const doc = relative(ROOT, path);
  const source = readFileSync(path, 'utf8').split(/\r?\n/);
  const samples: Sample[] = [];
  for (let i = 0; i < source.length; i++) {
    const open = FENCE_OPEN.exec(source[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    let end = i + 1;
    const close = new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`);
    while (end < source.length && !close.test(source[end]!)) end++;
    if (['ts', 'typescript'].includes(lang.toLowerCase())) {
      const sample: Sample = { doc, line: i + 1, fileName: '', text: '', lines: [] };
      const code: string[] = [];
      const marker = markerBefore(source, i, doc);
      if (marker?.kind === 'skip') sample.skip = marker.reason;
      for (const at of marker?.prelude ?? []) {
        code.push(source[at]!);
        sample.lines.push(at + 1);
      }
      for (let at = i + 1; at < end; at++) {
        const text = source[at]!;
        code.push(text.startsWith(indent) ? text.slice(indent.length) : text.trimStart());
        sample.lines.push(at + 1);
      }
      sample.text = `${code.join('\n')}\n`;
      sample.fileName = `${resolve(ROOT, doc)}.L${i + 1}.ts`;
      samples.push(sample);
    }
    i = end;
  }
  return samples;
}

/** The `<!-- sample: ... -->` comment right before the fence at `fenceAt`, if any. */
function markerBefore(
  source: string[],
  fenceAt: number,
  doc: string,
):
  | { kind: 'skip'; reason: string; prelude?: never }
  | { kind: 'prelude'; prelude: number[] }
  | undefined {
  let last = fenceAt - 1;
  while (last >= 0 && source[last]!.trim() === '') last--;
  if (last < 0 || !source[last]!.trim().endsWith('-->')) return undefined;
  let first = last;
  while (first > 0 && !source[first]!.includes('<!--')) first--;
  const opening = source[first]!.trim();
  const kind = MARKER.exec(opening)?.[1];
  if (kind === undefined) return undefined;
  const where = `${doc}:${first + 1}`;
  if (kind === 'skip') {
    const reason = opening.replace(MARKER, '').replace(/-->$/, '').trim();
    assert.ok(first === last && reason !== '', `${where}: write <!-- sample: skip (why) -->`);
    return { kind, reason };
  }
  assert.equal(kind, 'prelude', `${where}: unknown sample marker "${kind}" (skip or prelude)`);
  assert.ok(
    opening === '<!-- sample: prelude' && source[last]!.trim() === '-->' && last > first + 1,
    `${where}: a prelude is "<!-- sample: prelude", lines of TypeScript, then "-->"`,
  );
  return { kind, prelude: Array.from({ length: last - first - 1 }, (_, n) => first + 1 + n) };
}

/** `paths` that send the package's own names to src/, from package.json's "exports". */
function packagePaths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, string | Record<string, string>>;
  };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const built = typeof target === 'string' ? target : (target.default ?? target.import ?? '');
    const source = resolve(ROOT, built.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
    assert.ok(existsSync(source), `exports["${subpath}"]: no ${relative(ROOT, source)}`);
    paths[pkg.name + subpath.slice(1)] = [source];
  }
  return paths;
}

function compilerOptions(): ts.CompilerOptions {
  const configPath = join(ROOT, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  assert.equal(error, undefined, 'tsconfig.json is readable');
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, configPath);
  return {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    moduleDetection: ts.ModuleDetectionKind.Force,
    paths: packagePaths(),
  };
}

function createProgram(samples: Sample[], extra: Map<string, string>): ts.Program {
  const options = compilerOptions();
  const virtual = new Map([...samples.map((s) => [s.fileName, s.text] as const), ...extra]);
  const host = ts.createCompilerHost(options, true);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    const text = virtual.get(fileName);
    return text === undefined
      ? getSourceFile.call(host, fileName, languageVersion, ...rest)
      : ts.createSourceFile(fileName, text, languageVersion, true);
  };
  host.fileExists = (fileName) => virtual.has(fileName) || fileExists.call(host, fileName);
  host.readFile = (fileName) => virtual.get(fileName) ?? readFile.call(host, fileName);
  return ts.createProgram({ rootNames: [...virtual.keys()], options, host });
}

function describeDiagnostic(sample: Sample, diagnostic: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ');
  if (diagnostic.file === undefined || diagnostic.start === undefined) {
    return `${sample.doc}:${sample.line}: TS${diagnostic.code}: ${message}`;
  }
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  const code = diagnostic.file.text.split('\n')[line] ?? '';
  return (
    `${sample.doc}:${sample.lines[line] ?? sample.line}:${character + 1}: ` +
    `TS${diagnostic.code}: ${message}\n    ${code.trim()}`
  );
}

const docs = markdownFiles();
/** A malformed marker, reported by the first test rather than as a load error. */
let markerError: unknown;
const samples = ((): Sample[] => {
  try {
    return docs.flatMap(extractSamples);
  } catch (error) {
    markerError = error;
    return [];
  }
})();

/** A module that names the option types, so that the checker can list their keys. */
const OPTION_KEYS_FILE = join(ROOT, '__readme-option-keys.ts');
const OPTION_KEYS_TEXT = [
  "import type { RealtimeJwtOptions, RealtimeModuleExtras } from 'nest-realtime';",
  "import type { RealtimeModuleOptions } from 'nest-realtime';",
  'export declare const options: RealtimeModuleOptions & RealtimeModuleExtras;',
  'export declare const jwt: RealtimeJwtOptions;',
].join('\n');

let program: ts.Program;

before(() => {
  program = createProgram(
    samples.filter((s) => s.skip === undefined),
    new Map([[OPTION_KEYS_FILE, OPTION_KEYS_TEXT]]),
  );
  const general = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  assert.deepEqual(
    general.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')),
    [],
  );
});

describe('TypeScript samples in the docs', () => {
  it('finds the README samples', () => {
    if (markerError !== undefined) throw markerError;
    assert.ok(docs.includes(join(ROOT, 'README.md')), 'README.md is read');
    assert.ok(samples.filter((s) => s.doc === 'README.md' && !s.skip).length >= 5);
  });

  for (const sample of samples) {
    const name = `${sample.doc}:${sample.line} compiles`;
    if (sample.skip !== undefined) {
      it(name, { skip: sample.skip }, () => {});
      continue;
    }
    it(name, () => {
      const file = program.getSourceFile(sample.fileName);
      assert.ok(file, `${sample.fileName} is in the program`);
      const diagnostics = [
        ...program.getSyntacticDiagnostics(file),
        ...program.getSemanticDiagnostics(file),
      ];
      const problems = diagnostics.map((d) => describeDiagnostic(sample, d));
      assert.ok(problems.length === 0, `sample does not compile:\n${problems.join('\n')}`);
    });
  }
});

describe("README's options and settings", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const optionsSection = readme.split(/^## Options$/m)[1]?.split(/^## /m)[0] ?? '';
  /** First and second cells of the options table's rows, below its header. */
  const rows = optionsSection
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2)
    .map((line) => line.split(/(?<!\\)\|/).map((cell) => cell.trim()))
    .map(([, option = '', defaults = '']) => ({ option, defaults }));
  const backticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

  it('lists every module option, and only those', () => {
    const keysOf = (name: string): string[] => {
      const file = program.getSourceFile(OPTION_KEYS_FILE);
      assert.ok(file);
      const [declaration] = file.statements
        .filter(ts.isVariableStatement)
        .flatMap((s) => s.declarationList.declarations)
        .filter((d) => d.name.getText() === name);
      assert.ok(declaration);
      const checker = program.getTypeChecker();
      return checker
        .getTypeAtLocation(declaration)
        .getProperties()
        .map((p) => p.name);
    };
    const expected = [
      ...keysOf('options').filter((key) => key !== 'jwt'),
      ...keysOf('jwt').map((key) => `jwt.${key}`),
    ];
    const documented = rows.flatMap((row) => backticked(row.option));
    assert.ok(rows.length > 10, 'the options table is found');
    assert.deepEqual(
      {
        undocumented: expected.filter((key) => !documented.includes(key)),
        notAnOption: documented.filter((key) => !expected.includes(key)),
      },
      { undocumented: [], notAnOption: [] },
    );
  });

  it('states the defaults of REALTIME_DEFAULTS', () => {
    const defaults: Record<string, unknown> = REALTIME_DEFAULTS;
    let compared = 0;
    for (const { option, defaults: cell } of rows) {
      const names = backticked(option);
      const values = backticked(cell);
      if (names.length !== values.length) continue;
      names.forEach((name, n) => {
        if (!(name in defaults)) return;
        const actual = defaults[name];
        const shown = typeof actual === 'string' ? values[n] : Number(values[n]);
        if (typeof actual !== 'number' && typeof actual !== 'string') return;
        assert.equal(shown, actual, `README's default of ${name}`);
        compared++;
      });
    }
    assert.ok(compared >= 15, `${compared} defaults compared`);
  });

  it('names every environment variable the demo reads', () => {
    const config = readFileSync(join(ROOT, 'src/demo/demo-config.ts'), 'utf8');
    const variables = new Set([
      ...[...config.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!),
      ...[...config.matchAll(/^\s+(REALTIME_[A-Z0-9_]+):/gm)].map((m) => m[1]!),
    ]);
    assert.ok(variables.size > 10, 'the demo config is read');
    const missing = [...variables].filter((name) => !readme.includes(`\`${name}\``));
    assert.deepEqual(missing, []);
  });
});
