import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { errorCatalogue } from '../../src/errors';
import { settings } from '../../src/config/load-config';
import { generatedSections, readmePath, sectionOf } from '../../scripts/readme-sections';

const readme = readFileSync(readmePath, 'utf8');

test('README error codes and configuration table match the code (run `npm run docs` to refresh)', () => {
  for (const [name, content] of Object.entries(generatedSections())) {
    assert.equal(sectionOf(readme, name), content.trim(), `README section ${name} is stale`);
  }
});

test('every error code and every setting is documented', () => {
  for (const code of Object.keys(errorCatalogue)) assert.ok(readme.includes(`\`${code}\``), code);
  for (const setting of settings) assert.ok(readme.includes(`\`${setting.env}\``), setting.env);
});

test('README shows the two commands that matter', () => {
  assert.match(readme, /npm ci && npm start/);
  assert.match(readme, /npm test/);
});
