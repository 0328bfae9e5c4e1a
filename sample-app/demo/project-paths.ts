import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: the nearest directory with a package.json above this file. It is the same
 * whether this file runs compiled from dist/ (the demo) or from source through ts-jest (e2e tests).
 */
function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

export const PROJECT_ROOT = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

/** The compiled sample app (`npm run build`). */
export const SAMPLE_APP_MAIN = path.join(PROJECT_ROOT, 'dist/sample-app/main.js');

/** The compiled orphan guard preloaded into each instance. */
export const EXIT_WITH_PARENT = path.join(PROJECT_ROOT, 'dist/sample-app/demo/exit-with-parent.js');
