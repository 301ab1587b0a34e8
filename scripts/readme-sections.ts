/**
 * The README sections generated from code, so the docs cannot drift: the configuration
 * table (from the settings table) and the error codes (from the error catalogue).
 * `npm run docs` rewrites them; test/docs/readme.test.ts fails when they are stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderConfigTable } from '../src/config/load-config';
import { errorCatalogue } from '../src/errors';

export const readmePath = path.join(__dirname, '..', '..', 'README.md');

export function renderErrorTable(): string {
  const rows = Object.entries(errorCatalogue).map(([code, { status, summary }]) => `| \`${code}\` | ${status} | ${summary.replace(/\|/g, '\\|')} |`);
  return ['| code | HTTP status | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

export function generatedSections(): Record<string, string> {
  return { 'error-codes': renderErrorTable(), 'config-table': renderConfigTable() };
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceSection(readme: string, name: string, content: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README lacks the ${start} … ${end} markers`);
  return `${readme.slice(0, from + start.length)}\n${content.trim()}\n${readme.slice(to)}`;
}

export function sectionOf(readme: string, name: string): string {
  const start = `<!-- ${name}:start -->`;
  const from = readme.indexOf(start);
  const to = readme.indexOf(`<!-- ${name}:end -->`);
  return from < 0 || to < from ? '' : readme.slice(from + start.length, to).trim();
}

if (require.main === module) {
  let readme = readFileSync(readmePath, 'utf8');
  for (const [name, content] of Object.entries(generatedSections())) readme = replaceSection(readme, name, content);
  writeFileSync(readmePath, readme);
  process.stdout.write('README sections updated\n');
}
