/**
 * The docs stay true to the code and to themselves: the generated tables match the error
 * catalogue and the settings, every code and setting is documented, the README stays a
 * short front door with the two commands that matter, and every relative link in the
 * Markdown files (README.md, CONTRIBUTING.md, docs/**) reaches a file, and a heading when
 * it names one. No database, no network: files only.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { errorCatalogue } from '../../src/errors';
import { settings } from '../../src/config/load-config';
import { generatedSections, repoRoot, sectionOf } from '../../scripts/doc-sections';

/** The README is the front door; depth belongs in docs/. */
const readmeLinesMax = 300;
/** The repository stays a product, not a lab notebook: run records live outside git. */
const trackedFilesMax = 399;
const trackedBytesMax = 5 * 1024 * 1024;

const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');

function markdownFilesUnder(folder: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(path.join(repoRoot, folder), { withFileTypes: true })) {
    const relative = path.posix.join(folder, entry.name);
    if (entry.isDirectory()) found.push(...markdownFilesUnder(relative));
    else if (entry.isFile() && entry.name.endsWith('.md')) found.push(relative);
  }
  return found;
}

/** Fenced code blocks hold shell comments and sample output, not headings or links. */
function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```[ \t]*$/gm, '');
}

/** GitHub's heading ids: the text without formatting, lower case, punctuation dropped, spaces as hyphens. */
function headingIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of withoutCodeBlocks(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const text = (match[1] ?? '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_]/g, '');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    ids.add(count === 0 ? base : `${base}-${count}`);
  }
  return ids;
}

/** Inline links and images whose target is not a URL: `[text](target)`, `![alt](target "title")`. */
function relativeLinks(markdown: string): string[] {
  const prose = withoutCodeBlocks(markdown).replace(/`[^`\n]*`/g, 'code');
  const targets: string[] = [];
  for (const match of prose.matchAll(/\[(?:[^[\]]|\[[^\]]*\])*\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g)) {
    const target = match[1] ?? '';
    if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) targets.push(target);
  }
  return targets;
}

test('generated doc sections match the code (run `npm run docs` to refresh)', () => {
  for (const section of generatedSections) {
    assert.equal(sectionOf(read(section.file), section.name), section.render().trim(), `${section.file}: section ${section.name} is stale`);
  }
});

test('every error code is in docs/api.md and every setting in docs/configuration.md', () => {
  const api = read('docs/api.md');
  const configuration = read('docs/configuration.md');
  for (const code of Object.keys(errorCatalogue)) assert.ok(api.includes(`\`${code}\``), code);
  for (const setting of settings) assert.ok(configuration.includes(`\`${setting.env}\``), setting.env);
});

test('README shows the two commands that matter and stays a front door', () => {
  const readme = read('README.md');
  assert.match(readme, /npm ci && npm start/);
  assert.match(readme, /npm test/);
  const lines = readme.split('\n').length;
  assert.ok(lines <= readmeLinesMax, `README.md has ${lines} lines; at most ${readmeLinesMax} (move depth to docs/)`);
});

test('every relative Markdown link reaches an existing file, and a heading when it names one', () => {
  const files = ['README.md', 'CONTRIBUTING.md', ...markdownFilesUnder('docs')];
  const broken: string[] = [];
  for (const file of files) {
    const markdown = read(file);
    for (const link of relativeLinks(markdown)) {
      const [target = '', anchor] = link.split('#', 2);
      const targetPath = target === '' ? file : path.posix.join(path.posix.dirname(file), decodeURIComponent(target));
      if (!existsSync(path.join(repoRoot, targetPath))) {
        broken.push(`${file}: ${link} (no ${targetPath})`);
      } else if (anchor !== undefined && targetPath.endsWith('.md') && !headingIds(read(targetPath)).has(anchor)) {
        broken.push(`${file}: ${link} (no heading #${anchor} in ${targetPath})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

test('the repository stays lean: under 400 tracked files and 5 MiB', (t) => {
  let listing: string;
  try {
    listing = execFileSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    t.skip('not a git checkout');
    return;
  }
  const files = listing.split('\0').filter((file) => file !== '' && existsSync(path.join(repoRoot, file)));
  const bytes = files.reduce((sum, file) => sum + statSync(path.join(repoRoot, file)).size, 0);
  assert.ok(files.length <= trackedFilesMax, `${files.length} tracked files (at most ${trackedFilesMax}): commit only the run records the docs cite`);
  assert.ok(bytes <= trackedBytesMax, `${bytes} tracked bytes (at most ${trackedBytesMax})`);
});
