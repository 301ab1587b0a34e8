/**
 * Comments cite repository paths (a decision record, a benchmark, a test), and a reader
 * must be able to open every one of them. This test reads the comments of every .ts file
 * under src/, bench/, scripts/ and test/ (with the TypeScript parser, so text inside
 * strings and templates is not mistaken for a comment) and checks that:
 * - every cited repository path exists, resolved from the repository root;
 * - no comment cites a notes file outside the repository: the measured fact belongs in
 *   the comment itself, or in a record under docs/decisions/ that the comment cites.
 * It needs no database and no network. Failures list every offending file:line.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

/** The repository root: the nearest directory up from here with package.json and tsconfig.json. */
function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'tsconfig.json'))) return dir;
    assert.notEqual(path.dirname(dir), dir, `no package.json above ${start}`);
  }
}

const repoRoot = findRepoRoot(__dirname);
const scannedFolders = ['src', 'bench', 'scripts', 'test'];
/** Folders that hold no source of ours (installed packages, run records). */
const skippedFolders = new Set(['node_modules', 'results', 'dist']);

function sourceFiles(folder: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(folder)) {
    const full = path.join(folder, name);
    if (statSync(full).isDirectory()) {
      if (!skippedFolders.has(name)) files.push(...sourceFiles(full));
    } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
      files.push(full);
    }
  }
  return files;
}

interface Comment {
  readonly text: string;
  /** Offset of the comment's first character in the file. */
  readonly pos: number;
}

/** Every comment of a file, each once: the leading trivia of every token, and the file's end. */
function commentsOf(fileName: string, text: string): Comment[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const seen = new Set<number>();
  const comments: Comment[] = [];
  const collect = (ranges: ts.CommentRange[] | undefined): void => {
    for (const range of ranges ?? []) {
      if (seen.has(range.pos)) continue;
      seen.add(range.pos);
      comments.push({ text: text.slice(range.pos, range.end), pos: range.pos });
    }
  };
  const visit = (node: ts.Node): void => {
    collect(ts.getLeadingCommentRanges(text, node.pos));
    collect(ts.getTrailingCommentRanges(text, node.end));
    for (const child of node.getChildren(source)) visit(child);
  };
  visit(source);
  return comments;
}

/**
 * A repository path as comments write it: a top-level folder of ours followed by a path,
 * or a bare Markdown file name (a file at the root). Not preceded by a path character, so
 * `dist/test/…`, `../ring/…` and URLs do not count.
 */
const pathPattern = /(?<![\w.\-/])(?:(?:docs|src|bench|test|scripts|native-bench|docker)\/[^\s'"`()[\],;]*|[\w-]+\.md\b)/g;
/** A glob, a template placeholder or an elided part: a pattern, not one path. */
const patternMarkers = /[*<>{}$…]|\.\.\./;

/** The path a token names, or null when it names a pattern rather than a file. */
function citedPath(token: string): string | null {
  if (patternMarkers.test(token)) return null;
  // Sentence punctuation, an anchor (#section) or a line reference (:42) is not the path.
  const bare = token.replace(/[#:].*$/, '').replace(/[.,;:!?]+$/, '');
  if (!/^[\w.\-/]+$/.test(bare)) return null;
  return bare;
}

/**
 * Paths that comments use as illustrations, not citations, by file. Keep this short: a
 * comment that means a real file should name one.
 */
const illustrativePaths: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  // A hand-made CPU profile's frames, drawn as a tree (compiled files that never exist).
  ['test/bench/profile.test.ts', new Set(['src/ingress/a.js'])],
]);

const bannedCitations: readonly { pattern: RegExp; why: string }[] = [
  { pattern: /FIELD-NOTES/i, why: 'a notes file outside the repository' },
  { pattern: /\.\.\/shared\b/, why: 'a folder outside the repository' },
  { pattern: /(?<![\w-])research\//, why: 'a folder outside the repository' },
];

interface Finding {
  readonly where: string;
  readonly what: string;
}

function scan(): { missing: Finding[]; banned: Finding[]; citations: number } {
  const missing: Finding[] = [];
  const banned: Finding[] = [];
  let citations = 0;
  for (const folder of scannedFolders) {
    for (const file of sourceFiles(path.join(repoRoot, folder))) {
      const text = readFileSync(file, 'utf8');
      const relative = path.relative(repoRoot, file);
      for (const comment of commentsOf(file, text)) {
        const firstLine = text.slice(0, comment.pos).split('\n').length;
        comment.text.split('\n').forEach((line, offset) => {
          const where = `${relative}:${firstLine + offset}`;
          for (const { pattern, why } of bannedCitations) {
            if (pattern.test(line)) banned.push({ where, what: `cites ${why}: ${line.trim()}` });
          }
          for (const match of line.matchAll(pathPattern)) {
            const cited = citedPath(match[0]);
            if (cited === null || illustrativePaths.get(relative)?.has(cited)) continue;
            citations++;
            if (!existsSync(path.join(repoRoot, cited))) missing.push({ where, what: `${cited} does not exist` });
          }
        });
      }
    }
  }
  return { missing, banned, citations };
}

const report = (findings: readonly Finding[]): string => findings.map((finding) => `  ${finding.where}: ${finding.what}`).join('\n');

const result = scan();

test('comments cite repository paths (some are found at all)', () => {
  assert.ok(result.citations > 50, `only ${result.citations} citations found: is the comment scan broken?`);
});

test('every repository path a comment cites exists', () => {
  assert.equal(result.missing.length, 0, `comments cite paths that do not exist:\n${report(result.missing)}`);
});

test('no comment cites notes outside the repository', () => {
  assert.equal(result.banned.length, 0, `comments cite files outside the repository:\n${report(result.banned)}`);
});

test('the path reading keeps paths and skips patterns', () => {
  const tokens = (line: string): (string | null)[] => [...line.matchAll(pathPattern)].map((match) => citedPath(match[0]));
  assert.deepEqual(tokens('see src/ring/layout.ts, and (docs/decisions/0003-x.md).'), ['src/ring/layout.ts', 'docs/decisions/0003-x.md']);
  assert.deepEqual(tokens('compiled into dist/test/docs; ../src/cli.ts'), []);
  assert.deepEqual(tokens('bench/results/*.json and bench/results/copy-paths-<timestamp>.json'), [null, null]);
  assert.deepEqual(tokens('src/sink/copy-in.ts:42 and docs/api.md#errors'), ['src/sink/copy-in.ts', 'docs/api.md']);
  assert.deepEqual(tokens('the README.md table'), ['README.md']);
});
