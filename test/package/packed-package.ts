import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export interface PackedPackage {
  tarball: string;
  sizeBytes: number;
  files: string[];
}

/** `npm pack` of the built library (npm test builds first), into a fresh temp dir. */
export async function packLibrary(): Promise<PackedPackage> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nest-etcd-lock-pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; size: number; files: Array<{ path: string }> }>;
  return { tarball: path.join(dir, info.filename), sizeBytes: info.size, files: info.files.map(f => f.path).sort() };
}

/** Runs npm in `cwd`, failing with its output when it fails. */
export async function npm(cwd: string, args: string[]): Promise<void> {
  try {
    await run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, maxBuffer: 16 << 20 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: err });
  }
}

/** Type-checks and compiles a fixture with the repository's TypeScript and the fixture's tsconfig. */
export async function compileFixture(fixtureDir: string): Promise<void> {
  const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  try {
    await run(process.execPath, [tsc, '-p', fixtureDir], { cwd: fixtureDir });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`type errors in ${path.basename(fixtureDir)}:\n${stdout}\n${stderr}`, { cause: err });
  }
}
