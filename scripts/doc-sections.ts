/**
 * The docs sections generated from code, so the docs cannot drift from it: the error codes
 * (from the error catalogue) in docs/api.md and the configuration table (from the settings
 * table) in docs/configuration.md. Each sits between `<!-- name:start -->` and
 * `<!-- name:end -->` in its file. `npm run docs` rewrites them; test/docs/docs.test.ts
 * fails while one is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderConfigTable } from '../src/config/load-config';
import { errorCatalogue } from '../src/errors';

/** The repository root, from dist/scripts/ where this file runs compiled. */
export const repoRoot = path.join(__dirname, '..', '..');

export interface GeneratedSection {
  /** The marker name: `<!-- name:start -->` … `<!-- name:end -->`. */
  readonly name: string;
  /** The Markdown file holding the markers, relative to the repository root. */
  readonly file: string;
  readonly render: () => string;
}

export function renderErrorTable(): string {
  const rows = Object.entries(errorCatalogue).map(([code, { status, summary }]) => `| \`${code}\` | ${status} | ${summary.replace(/\|/g, '\\|')} |`);
  return ['| code | HTTP status | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

export const generatedSections: readonly GeneratedSection[] = Object.freeze([
  Object.freeze({ name: 'error-codes', file: 'docs/api.md', render: renderErrorTable }),
  Object.freeze({ name: 'config-table', file: 'docs/configuration.md', render: renderConfigTable }),
]);

function markers(name: string): { start: string; end: string } {
  return { start: `<!-- ${name}:start -->`, end: `<!-- ${name}:end -->` };
}

/** Replaces the text between the section's markers; the markers must be there, once each. */
export function replaceSection(text: string, name: string, content: string): string {
  const { start, end } = markers(name);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from || text.indexOf(start, from + 1) >= 0) {
    throw new Error(`expected one ${start} … ${end} pair`);
  }
  return `${text.slice(0, from + start.length)}\n${content.trim()}\n${text.slice(to)}`;
}

/** The text between the section's markers, trimmed; '' when they are missing. */
export function sectionOf(text: string, name: string): string {
  const { start, end } = markers(name);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  return from < 0 || to < from ? '' : text.slice(from + start.length, to).trim();
}

/** Rewrites every generated section in place and returns the files that changed. */
export function updateGeneratedSections(root: string = repoRoot): string[] {
  const changed: string[] = [];
  for (const file of new Set(generatedSections.map((section) => section.file))) {
    const fullPath = path.join(root, file);
    const before = readFileSync(fullPath, 'utf8');
    let after = before;
    for (const section of generatedSections.filter((candidate) => candidate.file === file)) {
      try {
        after = replaceSection(after, section.name, section.render());
      } catch (error) {
        throw new Error(`${file}: ${(error as Error).message}`);
      }
    }
    if (after !== before) {
      writeFileSync(fullPath, after);
      changed.push(file);
    }
  }
  return changed;
}

if (require.main === module) {
  const changed = updateGeneratedSections();
  process.stdout.write(changed.length === 0 ? 'generated doc sections already current\n' : `updated ${changed.join(', ')}\n`);
}
