import { jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { testedNodes, type NodeRuntime } from './node-versions.js';
import { compileFixture, npm, packLibrary, REPO_ROOT, type PackedPackage } from './packed-package.js';

// First run on a clean machine installs each fixture's dependencies from the registry.
jest.setTimeout(240_000);

const FIXTURES = path.join(REPO_ROOT, 'test/package/fixtures');

describe('the package as users install it', () => {
  let packed: PackedPackage;
  let etcd: EtcdCluster;
  let nodes: NodeRuntime[];

  beforeAll(async () => {
    [packed, etcd, nodes] = await Promise.all([packLibrary(), startEtcd(), testedNodes()]);
    console.log(`apps run on Node ${nodes.map(n => n.version).join(', ')}`);
  });
  afterAll(async () => {
    await etcd?.close();
    if (packed) fs.rmSync(path.dirname(packed.tarball), { recursive: true, force: true });
  });

  it('holds only the compiled library, its types and source maps, README and LICENSE', () => {
    const allowed = /^(package\.json|README\.md|LICENSE|dist\/lib\/.+\.(js|d\.ts|js\.map))$/;
    expect(packed.files.filter(file => !allowed.test(file))).toEqual([]);
    expect(packed.files).toEqual(
      expect.arrayContaining(['README.md', 'LICENSE', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/index.js.map']),
    );
    // Source maps carry their sources, since lib/*.ts is not shipped.
    const map = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'dist/lib/core/session.js.map'), 'utf8'));
    expect(map.sourcesContent?.[0]).toContain('class Session');
    console.log(`tarball: ${packed.files.length} files, ${(packed.sizeBytes / 1024).toFixed(1)} KiB`);
  });

  it('declares its Nest, rxjs and reflect-metadata ranges as peers, and etcd3 as a dependency', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(manifest.peerDependencies).toMatchObject({
      '@nestjs/common': '^11.0.0 || ^12.0.0',
      '@nestjs/core': '^11.0.0 || ^12.0.0',
      rxjs: '^7.1.0',
    });
    expect(manifest.peerDependencies['reflect-metadata']).toBeDefined();
    expect(manifest.dependencies.etcd3).toBeDefined();
    expect(manifest.main).toBe('./dist/lib/index.js');
    expect(manifest.types).toBe('./dist/lib/index.d.ts');
    expect(manifest.exports['.']).toEqual({ types: './dist/lib/index.d.ts', default: './dist/lib/index.js' });
  });

  it('declares @nestjs/schedule of Nest 11 (6.x) and Nest 12 (12.x), with cron 4, as optional peers of nest-etcd-lock/schedule', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(manifest.peerDependencies).toMatchObject({ '@nestjs/schedule': '^6.0.0 || ^12.0.0', cron: '^4.0.0' });
    expect(manifest.peerDependenciesMeta).toMatchObject({ '@nestjs/schedule': { optional: true }, cron: { optional: true } });
    expect(manifest.exports['./schedule']).toEqual({ types: './dist/lib/schedule/index.d.ts', default: './dist/lib/schedule/index.js' });
    // TypeScript's node10 resolution (the CommonJS fixture's) reads typesVersions, not exports.
    expect(manifest.typesVersions['*'].schedule).toEqual(['./dist/lib/schedule/index.d.ts']);
    expect(packed.files).toEqual(expect.arrayContaining(['dist/lib/schedule/index.js', 'dist/lib/schedule/index.d.ts']));
  });

  it.each([
    ['nest11-cjs', 'Nest 11, TypeScript compiled to CommonJS'],
    ['nest12-esm', 'Nest 12, ESM'],
  ])('works in %s (%s), on Node 20, 22 and 24', async fixture => {
    const dir = path.join(FIXTURES, fixture);
    await npm(dir, ['install', '--no-package-lock']);
    await npm(dir, ['install', '--no-save', '--no-package-lock', packed.tarball]);
    fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
    fs.copyFileSync(path.join(FIXTURES, 'probe-app.ts'), path.join(dir, 'src/main.ts'));
    await compileFixture(dir);

    for (const node of nodes) {
      const app = await startApp(node, path.join(dir, 'dist/main.js'), {
        ETCD_HOSTS: etcd.endpoints.join(','),
        LOCK_PREFIX: `${fixture}/`,
        // Each run its own election and ticks, so a run does not wait behind the previous one's leftovers.
        TICK_PREFIX: `${fixture}-ticks/${node.version}/`,
        ELECTION_PREFIX: `${fixture}-elections/${node.version}/`,
      });
      try {
        expect(app.nodeVersion).toBe(node.version);
        const base = `http://127.0.0.1:${app.port}`;
        // Two concurrent requests on one key are serialized: their 200 ms sections do not overlap.
        type Work = { start: number; end: number; token: string };
        const [a, b] = await Promise.all(
          [1, 2].map(() => fetch(`${base}/work/7`, { method: 'POST' }).then(r => r.json() as Promise<Work>)),
        );
        const [first, second] = [a, b].sort((x, y) => x.start - y.start);
        expect(second.start).toBeGreaterThanOrEqual(first.end);
        expect(BigInt(second.token)).toBeGreaterThan(BigInt(first.token));
        const identity = await fetch(`${base}/identity`).then(r => r.json());
        expect(identity).toEqual({ lockServiceInjected: true, busyIsLockBusyError: true, lostIsLockLostError: true });
        const health = await fetch(`${base}/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({ status: 'ok', details: { locks: { status: 'up', session: 'alive' } } });
        // nest-etcd-lock/schedule on this fixture's @nestjs/schedule: a @Cron @OncePerTick tick and a
        // @Cron @LeaderOnly run, each under its LockHandle, the latter with the leadership's token.
        type Run = { resource: string; token: string };
        type Jobs = { ticks: Run[]; leaderRuns: Run[]; leader: { value: string; token: string } | null };
        let jobs: Jobs | undefined;
        await waitFor(
          async () => {
            jobs = (await fetch(`${base}/jobs`).then(r => r.json())) as Jobs;
            return jobs.ticks.length > 0 && jobs.leaderRuns.length > 0;
          },
          { timeoutMs: 10_000, intervalMs: 100, message: () => `a tick and a leader-only run, got ${JSON.stringify(jobs)}` },
        );
        expect(jobs!.ticks[0]).toEqual({
          resource: expect.stringMatching(/^probe-tick@\d{4}-\d\d-\d\dT[\d:.]+Z$/),
          token: expect.stringMatching(/^\d+$/),
        });
        expect(jobs!.leader).toEqual({ value: `probe@${node.version}`, token: jobs!.leaderRuns[0].token });
      } finally {
        await app.stop();
      }
    }
  });
});

async function startApp(
  node: NodeRuntime,
  main: string,
  env: Record<string, string>,
): Promise<{ port: number; nodeVersion: string; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(node.execPath, [main], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', chunk => (stderr += chunk));
  const exited = new Promise(resolve => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    const ready = await new Promise<{ port: number; node: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`app did not start: ${stderr}`)), 20_000);
      child.once('exit', code => reject(new Error(`app exited with ${code}: ${stderr}`)));
      createInterface({ input: child.stdout! }).on('line', line => {
        if (!line.startsWith('{')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line));
      });
    });
    return { port: ready.port, nodeVersion: ready.node, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
