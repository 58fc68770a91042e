/**
 * The package as an application gets it: `npm pack`, the tarball unpacked into a temporary app's
 * node_modules (no network), the dependencies and peers the tarball's package.json declares linked
 * from this repo's node_modules (one copy of each, as npm hoists them), the app's TypeScript
 * checked against the installed .d.ts through the "exports" map, then the app run with node and
 * talked to with a real `ws` client.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hs256Token, nowSeconds } from './support/jwt-craft.js';
import { killOnExit } from './support/redis-server.js';
import { TestClient } from './support/test-client.js';

/** The repo root (this file runs from build/test/). */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = join(ROOT, 'test', 'fixtures', 'consumer');
const SECRET = 'package-consumer-test-secret-0123456789';

/** Packages the app and the module must share: peers, never the module's own dependencies. */
const SHARED_WITH_APP = [
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/websockets',
  '@nestjs/platform-ws',
  'reflect-metadata',
  'rxjs',
  'class-validator',
  'class-transformer',
];

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  exports?: Record<string, Record<string, string>>;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string }>;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Runs a command to completion within `timeoutMs`; fails with its output otherwise. */
function run(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const how = error.killed ? `killed after ${timeoutMs} ms` : `exit code ${error.code}`;
        reject(
          new Error(
            `${relative(ROOT, command) || command} ${args.join(' ')} (in ${cwd}) failed, ${how}:\n` +
              `${stdout.slice(-4000)}\n${stderr.slice(-4000)}`,
          ),
        );
      },
    );
  });
}

/** npm itself: the one running `npm test` when there is one, else npm on PATH. */
function npm(args: string[], cwd: string, timeoutMs: number) {
  const cli = process.env.npm_execpath;
  return cli && /npm-cli\.js$/.test(cli)
    ? run(process.execPath, [cli, ...args], cwd, timeoutMs)
    : run('npm', args, cwd, timeoutMs);
}

function newestMtime(dir: string, include: (path: string) => boolean): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, include));
    else if (include(path)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** The files the "exports" map points at, relative to the package root. */
function exportTargets(manifest: Manifest): Array<{ subpath: string; file: string }> {
  return Object.entries(manifest.exports ?? {}).flatMap(([subpath, conditions]) =>
    Object.entries(conditions).map(([condition, target]) => ({
      subpath: `exports["${subpath}"].${condition}`,
      file: target.replace(/^\.\//, ''),
    })),
  );
}

/**
 * True when dist/ holds every export target and is newer than the library's sources (CI builds
 * before testing; a stale or missing dist is rebuilt here so that the tarball is this code).
 */
function distIsFresh(manifest: Manifest): boolean {
  const targets = exportTargets(manifest).map(({ file }) => join(ROOT, file));
  if (targets.length === 0 || !targets.every((file) => existsSync(file))) return false;
  const built = Math.min(...targets.map((file) => statSync(file).mtimeMs));
  const sources = newestMtime(
    join(ROOT, 'src'),
    (path) =>
      path.endsWith('.ts') &&
      !path.endsWith('.spec.ts') &&
      !path.startsWith(join(ROOT, 'src', 'demo')),
  );
  return sources <= built;
}

/** Waits for the app's `{"listening":<port>}` line; fails with its output if it exits first. */
function listeningPort(child: ChildProcess, output: () => string, timeoutMs: number) {
  return new Promise<number>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => fail(`the consumer app did not listen within ${timeoutMs} ms`),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = /\{"listening":(\d+)\}/.exec(buffered);
      if (match) {
        cleanup();
        resolve(Number(match[1]));
      }
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(`the consumer app exited (code ${code}, signal ${signal}) before listening`);
    function cleanup() {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    }
    function fail(message: string) {
      cleanup();
      reject(new Error(`${message}; its output:\n${output()}`));
    }
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('nest-realtime as an installed package', { timeout: 300_000 }, () => {
  const repoManifest = readJson<Manifest>(join(ROOT, 'package.json'));
  const work = mkdtempSync(join(tmpdir(), 'nest-realtime-consumer-'));
  const app = join(work, 'app');
  const installed = join(app, 'node_modules', 'nest-realtime');
  let pack: PackResult | undefined;
  let manifest: Manifest | undefined;
  let child: ChildProcess | undefined;
  let output = '';
  let port = 0;
  let client: TestClient | undefined;

  before(async () => {
    if (!distIsFresh(repoManifest)) {
      await npm(['run', 'build'], ROOT, 180_000);
    }
    const { stdout } = await npm(
      ['pack', '--ignore-scripts', '--json', '--pack-destination', work],
      ROOT,
      60_000,
    );
    pack = (JSON.parse(stdout) as PackResult[])[0];
    assert.ok(pack, `npm pack printed no result: ${stdout}`);
    await run('tar', ['-xzf', join(work, pack.filename), '-C', work], work, 30_000);
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    renameSync(join(work, 'package'), installed);
    manifest = readJson<Manifest>(join(installed, 'package.json'));
  });

  after(async () => {
    client?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 5000))) child.kill('SIGKILL');
      await waitExit(child, 5000);
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('packs dist/ with JS and types for every export, and no tests, sources or demo', () => {
    const files = new Set(pack!.files.map((file) => file.path));
    for (const { subpath, file } of exportTargets(repoManifest)) {
      assert.ok(
        files.has(file),
        `${subpath} → ${file} is not in the tarball: check "files" in package.json`,
      );
    }
    for (const file of files) {
      if (file.endsWith('.js')) {
        assert.ok(files.has(file.replace(/\.js$/, '.d.ts')), `${file} ships without its .d.ts`);
      }
    }
    const unwanted = [...files].filter((file) =>
      /^(src|test|bench|build|docs|node_modules|\.ci|dist\/demo)\/|^tsconfig|\.tsbuildinfo$/.test(
        file,
      ),
    );
    assert.deepEqual(unwanted, [], 'files the package must not ship');
    assert.ok(files.has('package.json') && files.has('README.md') && files.has('LICENSE'));
  });

  it('declares the framework as peers, so the app and the module share one copy', () => {
    for (const name of SHARED_WITH_APP) {
      assert.ok(
        manifest!.peerDependencies?.[name],
        `${name} must be a peerDependency of ${manifest!.name}`,
      );
      assert.equal(
        manifest!.dependencies?.[name],
        undefined,
        `${name} must not be a dependency of ${manifest!.name}: npm would install a second copy`,
      );
    }
    assert.equal(
      manifest!.dependencies?.['@nestjs/platform-express'],
      undefined,
      'the HTTP platform is the app’s choice',
    );
  });

  it('type-checks an app against the installed types (nodenext, decorators)', async () => {
    assert.ok(manifest, 'the tarball was unpacked');
    const consumer = readJson<Manifest>(join(FIXTURE, 'package.json'));
    copyFileSync(join(FIXTURE, 'package.json'), join(app, 'package.json'));
    copyFileSync(join(FIXTURE, 'tsconfig.json'), join(app, 'tsconfig.json'));
    mkdirSync(join(app, 'src'));
    for (const name of readdirSync(join(FIXTURE, 'src'))) {
      // Kept as .ts.txt so that the repo's own tsc does not compile them.
      copyFileSync(join(FIXTURE, 'src', name), join(app, 'src', name.replace(/\.txt$/, '')));
    }
    // What npm would hoist: the app's dependencies and the module's dependencies and peers,
    // each one copy, taken from this repo's install (no network).
    const names = new Set([
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
      ...Object.keys(consumer.dependencies ?? {}),
      ...Object.keys(consumer.devDependencies ?? {}),
    ]);
    names.delete(manifest.name);
    for (const name of names) {
      const source = join(ROOT, 'node_modules', name);
      assert.ok(existsSync(source), `${name} is not installed in the repo (npm ci)`);
      const target = join(app, 'node_modules', name);
      mkdirSync(dirname(target), { recursive: true });
      symlinkSync(source, target, 'dir');
    }
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-p', 'tsconfig.json'], app, 120_000).catch(
      (error: Error) => {
        throw new Error(`the consumer app does not type-check against the package: ${error}`);
      },
    );
    assert.ok(existsSync(join(app, 'dist', 'main.js')));
  });

  it('refuses deep imports: only the "exports" map is public', async () => {
    await assert.rejects(
      run(
        process.execPath,
        ['--input-type=module', '-e', "await import('nest-realtime/dist/realtime/index.js')"],
        app,
        30_000,
      ),
      /ERR_PACKAGE_PATH_NOT_EXPORTED/,
    );
  });

  it('runs the app, which authenticates a ws client and answers ping', async () => {
    assert.ok(existsSync(join(app, 'dist', 'main.js')), 'the consumer app was built');
    const env: NodeJS.ProcessEnv = { ...process.env, JWT_SECRET: SECRET, NODE_ENV: 'test' };
    delete env.NODE_TEST_CONTEXT;
    child = spawn(process.execPath, [join('dist', 'main.js')], {
      cwd: app,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(child);
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    port = await listeningPort(child, () => output, 30_000);

    const token = hs256Token(
      { sub: 'consumer-user', iat: nowSeconds(), exp: nowSeconds() + 600 },
      SECRET,
    );
    client = TestClient.connect(`ws://127.0.0.1:${port}/ws`, token);
    const first = await client.next(undefined, 5000);
    assert.equal(first.type, 'connection.established', `first message: ${JSON.stringify(first)}`);
    // The app's own provider got RealtimeService by injection and saw the connection open.
    const hello = await client.next('consumer.hello', 5000);
    assert.equal(hello.data.userId, 'consumer-user');

    const pong = await client.request({ type: 'ping', data: {} }, 5000);
    assert.equal(pong.type, 'pong', JSON.stringify(pong));

    // A host gateway, validated with the app's class-validator decorators.
    const echoed = await client.request({ type: 'consumer.echo', data: { text: 'hi' } }, 5000);
    assert.deepEqual(
      [echoed.type, echoed.data],
      ['consumer.echoed', { text: 'hi', from: 'consumer-user' }],
    );
    const refused = await client.request({ type: 'consumer.echo', data: { text: 42 } }, 5000);
    assert.equal(refused.type, 'error');
    assert.equal(refused.data.code, 'INVALID_MESSAGE_FORMAT');
    assert.deepEqual(client.malformed, []);

    client.close();
    child.kill('SIGTERM');
    assert.ok(await waitExit(child, 10_000), `the app did not stop on SIGTERM:\n${output}`);
    assert.doesNotMatch(output, /ERROR/, 'the app logged no error');
  });
});
