/**
 * etcd servers, etcdctl and Go `concurrency.Mutex` peers (the interop tests', the benchmark's) of
 * every etcd line the project tests, built from etcd's Go modules pinned in
 * test/etcd-builds/<line>/<module>/go.mod + go.sum, each built once per machine into a cache
 * outside the repository:
 *
 *   ${NEST_ETCD_LOCK_CACHE:-${XDG_CACHE_HOME:-~/.cache}/nest-etcd-lock}/etcd-<version>/<tool>-<hash>/<binary>
 *
 * <hash> covers the tool's go.mod, go.sum and sources, so a changed pin or program builds anew.
 * Line 3.4 is Debian's etcd-server / etcd-client package (etcd 3.4's Go module is not on the
 * proxy); its Go peer is the 3.5 client's Mutex.
 *
 * The sources live once (test/etcd-builds/cmd/<tool>/, bench/go/) and each line's go.mod is
 * applied with `go build -modfile` (to bump a line: in the source directory, `go get
 * -modfile=<path to test/etcd-builds/<line>/<module>/go.mod> go.etcd.io/etcd/...@vX.Y.Z`).
 *
 * Loaded by Jest's global setup through CommonJS as well as by ESM code: no import.meta here.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** etcd release lines the project tests; 3.6 (what Kubernetes ships) is the default. */
export const ETCD_LINES = ['3.4', '3.5', '3.6', '3.7'] as const;
export type EtcdLine = (typeof ETCD_LINES)[number];
export const DEFAULT_ETCD_LINE = '3.6' satisfies BuiltLine;

/** Lines built from Go modules (3.4 is Debian's package). */
export type BuiltLine = Exclude<EtcdLine, '3.4'>;

/** What can be built: etcd, etcdctl, the interop tests' Go Mutex peer, the benchmark's Go peer. */
export type GoTool = 'server' | 'etcdctl' | 'mutex' | 'mutexbench';

/**
 * Each tool's main package (`pkg`, built in `sourceDir`, relative to the repository) and the
 * per-line module it is built with (test/etcd-builds/<line>/<module>/go.mod + go.sum).
 */
const TOOLS: Record<GoTool, { sourceDir: string; module: string; pkg: string; binary: string }> = {
  server: { sourceDir: 'test/etcd-builds/cmd/server', module: 'server', pkg: '.', binary: 'etcd' },
  etcdctl: { sourceDir: 'test/etcd-builds/cmd/etcdctl', module: 'etcdctl', pkg: 'go.etcd.io/etcd/etcdctl/v3', binary: 'etcdctl' },
  mutex: { sourceDir: 'test/etcd-builds/cmd/mutex', module: 'client', pkg: '.', binary: 'etcd-mutex' },
  mutexbench: { sourceDir: 'bench/go', module: 'client', pkg: '.', binary: 'mutexbench' },
};

const BUILD_TIMEOUT_MS = 30 * 60_000;
const STDERR_TAIL_LINES = 25;

/** A build that failed or could not start, naming what and why. */
export class EtcdBuildError extends Error {
  override name = 'EtcdBuildError';
}

/** The line $ETCD_VERSION asks for (default 3.6); a bad value throws naming the accepted ones. */
export function selectedLine(env: NodeJS.ProcessEnv = process.env): EtcdLine {
  return parseLine(env.ETCD_VERSION ?? DEFAULT_ETCD_LINE, 'ETCD_VERSION');
}

/** '3.6', 'v3.6' or '3.6.16' → '3.6'; anything else throws naming `source`. */
export function parseLine(value: string, source: string): EtcdLine {
  const line = /^v?(\d+\.\d+)(\.\d+)?$/.exec(value.trim())?.[1];
  if (!line || !(ETCD_LINES as readonly string[]).includes(line)) {
    throw new Error(`${source}=${value}: expected one of ${ETCD_LINES.join(', ')}`);
  }
  return line as EtcdLine;
}

/** The repository root: the nearest directory at or above `from` holding test/etcd-builds. */
export function repoRoot(from: string = process.cwd()): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'test', 'etcd-builds', 'cmd'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no test/etcd-builds above ${from}: run from the nest-etcd-lock repository`);
  }
}

function buildsDir(root: string): string {
  return path.join(root, 'test', 'etcd-builds');
}

/** The etcd version a built line pins (the server module's `go.etcd.io/etcd/server/v3` requirement). */
export function pinnedVersion(line: BuiltLine, root: string = repoRoot()): string {
  const goMod = fs.readFileSync(path.join(buildsDir(root), line, 'server', 'go.mod'), 'utf8');
  const version = /go\.etcd\.io\/etcd\/server\/v3 v(\S+)/.exec(goMod)?.[1];
  if (!version) throw new Error(`test/etcd-builds/${line}/server/go.mod does not require go.etcd.io/etcd/server/v3`);
  return version;
}

/** The build cache root (survives between runs; outside the repository). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NEST_ETCD_LOCK_CACHE) return env.NEST_ETCD_LOCK_CACHE;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'nest-etcd-lock');
}

/** The first of `candidates`, then `name` in each PATH directory, that is an executable file. */
export function findExecutable(
  name: string,
  candidates: Array<string | undefined> = [],
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const onPath = (env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map(d => path.join(d, name));
  for (const candidate of [...candidates, ...onPath]) {
    if (!candidate) continue;
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The Go command: $GO, else `go` on PATH, else /usr/local/go/bin/go; undefined when there is none. */
export function goCommand(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findExecutable('go', [env.GO], env) ?? findExecutable('go', ['/usr/local/go/bin/go'], {});
}

/** Where `tool` of `line` is (or will be) cached; nothing is built. */
export function cachedToolPath(line: BuiltLine, tool: GoTool, root: string = repoRoot()): string {
  const { sourceDir, module, binary } = TOOLS[tool];
  const hash = createHash('sha256');
  for (const file of [path.join(line, module, 'go.mod'), path.join(line, module, 'go.sum')]) {
    hash.update(file).update(fs.readFileSync(path.join(buildsDir(root), file)));
  }
  const src = path.join(root, sourceDir);
  for (const file of fs
    .readdirSync(src)
    .filter(f => f.endsWith('.go'))
    .sort()) {
    hash.update(file).update(fs.readFileSync(path.join(src, file)));
  }
  const key = hash.digest('hex').slice(0, 12);
  return path.join(cacheRoot(), `etcd-${pinnedVersion(line, root)}`, `${tool}-${key}`, binary);
}

export interface BuildOptions {
  /** Told before a build starts (builds take minutes); default: a line on stderr. */
  onBuild?: (message: string) => void;
  root?: string;
}

/**
 * The cached binary of `tool` for `line`, built first when missing. Throws EtcdBuildError naming
 * the module and the go command's stderr tail when Go is missing or the build fails.
 */
export function ensureTool(line: BuiltLine, tool: GoTool, options: BuildOptions = {}): string {
  const root = options.root ?? repoRoot();
  const target = cachedToolPath(line, tool, root);
  if (fs.existsSync(target)) return target;
  const { sourceDir, module: moduleName, pkg, binary } = TOOLS[tool];
  const module = `${sourceDir} with test/etcd-builds/${line}/${moduleName}/go.mod`;
  const go = goCommand();
  if (!go) {
    throw new EtcdBuildError(
      `cannot build ${binary} ${pinnedVersion(line, root)} (${module}): Go is not installed ` +
        `(looked for $GO, go on PATH, /usr/local/go/bin/go); install Go 1.26+ or point ETCD_BIN/ETCDCTL_BIN at an etcd`,
    );
  }
  (options.onBuild ?? (m => process.stderr.write(`${m}\n`)))(
    `[etcd builds] building ${binary} ${pinnedVersion(line, root)} from ${module} (once per machine; minutes on a cold Go cache)`,
  );
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const partial = `${target}.partial-${process.pid}`;
  const modfile = path.join(buildsDir(root), line, moduleName, 'go.mod');
  const result = spawnSync(go, ['build', '-trimpath', '-buildvcs=false', `-modfile=${modfile}`, '-o', partial, pkg], {
    cwd: path.join(root, sourceDir),
    encoding: 'utf8',
    timeout: BUILD_TIMEOUT_MS,
    // A module's own `toolchain` line must not make Go download another toolchain; GOFLAGS from the
    // environment (e.g. -mod=mod) must not rewrite the pinned go.mod.
    env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly', GOWORK: 'off' },
  });
  if (result.status !== 0) {
    fs.rmSync(partial, { force: true });
    const tail = `${result.stderr ?? ''}${result.error ? `\n${result.error.message}` : ''}`
      .trim()
      .split('\n')
      .slice(-STDERR_TAIL_LINES)
      .join('\n');
    throw new EtcdBuildError(`building ${module} failed (${go} build, exit ${result.status ?? result.signal}):\n${tail}`);
  }
  if (tool === 'server') checkVersion(partial, pinnedVersion(line, root), module);
  fs.renameSync(partial, target); // atomic: a concurrent run sees the whole binary or none
  return target;
}

/**
 * `env` without this module's selectors: etcd reads ETCD_* variables as flags (3.4 refuses to
 * start with ETCD_VERSION=3.4, a bad value for --version), etcdctl ETCDCTL_*.
 */
export function etcdChildEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !['ETCD_VERSION', 'ETCD_BIN', 'ETCDCTL_BIN'].includes(name)));
}

/** The first line of `etcd --version` ("etcd Version: 3.6.16"), or why there is none. */
export function versionLine(etcd: string): string {
  const out = spawnSync(etcd, ['--version'], { encoding: 'utf8', timeout: 10_000, env: etcdChildEnv() });
  return (out.stdout ?? '').split('\n')[0]?.trim() || `(${etcd} --version failed: ${out.error?.message ?? out.stderr})`;
}

function checkVersion(etcd: string, expected: string, module: string): void {
  const line = versionLine(etcd);
  if (line !== `etcd Version: ${expected}`) {
    fs.rmSync(etcd, { force: true });
    throw new EtcdBuildError(`${module} built an etcd that reports "${line}", not "etcd Version: ${expected}"`);
  }
}

export interface EtcdBinaries {
  line: EtcdLine | 'custom';
  etcd: string;
  etcdctl: string;
}

const DEBIAN_ETCD = '/usr/bin/etcd';
const DEBIAN_ETCDCTL = '/usr/bin/etcdctl';

/**
 * The etcd and etcdctl a run uses: $ETCD_BIN / $ETCDCTL_BIN when set (without $ETCDCTL_BIN, the
 * etcdctl beside $ETCD_BIN, else `etcdctl` on PATH), else the line $ETCD_VERSION names (default
 * 3.6; 3.4 = Debian's /usr/bin/etcd), built when missing.
 */
export function resolveEtcdBinaries(env: NodeJS.ProcessEnv = process.env, options: BuildOptions = {}): EtcdBinaries {
  const line = selectedLine(env);
  if (env.ETCD_BIN) {
    const etcdctl = env.ETCDCTL_BIN ?? findExecutable('etcdctl', [path.join(path.dirname(env.ETCD_BIN), 'etcdctl')], env) ?? 'etcdctl';
    return { line: 'custom', etcd: env.ETCD_BIN, etcdctl };
  }
  if (line === '3.4') return { line, etcd: DEBIAN_ETCD, etcdctl: env.ETCDCTL_BIN ?? DEBIAN_ETCDCTL };
  return { line, etcd: ensureTool(line, 'server', options), etcdctl: env.ETCDCTL_BIN ?? ensureTool(line, 'etcdctl', options) };
}

/**
 * A Go peer built against go.etcd.io/etcd/client/v3 of `line` (3.4's client is not on the proxy:
 * the 3.5 client's): the interop tests' Mutex, or the benchmark's.
 */
export function ensureMutexPeer(line: EtcdLine, options: BuildOptions & { tool?: 'mutex' | 'mutexbench' } = {}): string {
  return ensureTool(clientLine(line), options.tool ?? 'mutex', options);
}

/** The line whose client/v3 the Go peers of `line` use. */
export function clientLine(line: EtcdLine): BuiltLine {
  return line === '3.4' ? '3.5' : line;
}
