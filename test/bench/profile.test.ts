/**
 * The CPU-profile tooling: the reader's arithmetic on a profile built by hand (so every
 * number is known), then a real engine run under --cpu-prof whose per-thread profiles
 * must show the ingress code on the main thread and the actor code on the actor thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../bench/common/results';
import { runScenario } from '../../bench/load/load-run';
import { parseScenario } from '../../bench/load/scenario';
import { areaOf, areaTimes, functionTimes, readThreadProfile, type V8CpuProfile } from '../../bench/profile/cpu-profile';
import { renderFlameSvg } from '../../bench/profile/flame-svg';
import { profileRecord, readProfiles, renderProfileMarkdown } from '../../bench/profile/profile-report';
import { serverUrl } from '../support/database';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber, columnNumber: 0, scriptId: '0' });
const own = (file: string): string => `file://${repoRoot}/dist/src/${file}`;

/*
 * (root) ─┬─ (idle)                      samples: 10 ms
 *         ├─ handle  src/ingress/a.js ─┬─ parse (native)        30 ms
 *         │                            └─ handle (recursion) ── parse  5 ms
 *         │   handle itself: 10 ms
 *         ├─ handle  src/ingress/a.js  (a second V8 node for the same frame) 5 ms
 *         └─ (garbage collector)        20 ms
 */
const handmade: V8CpuProfile = {
  startTime: 0,
  endTime: 80_000,
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 3, 7, 8] },
    { id: 2, callFrame: frame('(idle)') },
    { id: 3, callFrame: frame('handle', own('ingress/a.js'), 9), children: [4, 5] },
    { id: 4, callFrame: frame('parse') },
    { id: 5, callFrame: frame('handle', own('ingress/a.js'), 9), children: [6] },
    { id: 6, callFrame: frame('parse') },
    { id: 7, callFrame: frame('handle', own('ingress/a.js'), 9) },
    { id: 8, callFrame: frame('(garbage collector)') },
  ],
  // Each sample lasts until the next: the deltas after it (1 ms apart, in µs).
  samples: [...repeat(2, 10), ...repeat(4, 30), ...repeat(6, 5), ...repeat(3, 10), ...repeat(7, 5), ...repeat(8, 20), 2],
  timeDeltas: [0, ...repeat(1000, 80)],
};

function repeat(value: number, count: number): number[] {
  return Array.from({ length: count }, () => value);
}

test('a profile read by hand: busy time leaves idle out, identical frames merge, recursion counts once', () => {
  const profile = readThreadProfile(handmade, repoRoot);
  assert.equal(profile.busyUs, 70_000);
  assert.equal(profile.wallUs, 80_000);
  const handles = profile.root.children.filter((child) => child.name === 'handle');
  assert.equal(handles.length, 1, 'the two V8 nodes of handle under (root) are one frame');
  assert.equal(handles[0]?.totalUs, 50_000);
  assert.equal(handles[0]?.location, 'dist/src/ingress/a.js:10');
  const byName = new Map(functionTimes(profile).map((entry) => [entry.name, entry]));
  assert.equal(byName.get('parse')?.selfUs, 35_000);
  assert.equal(byName.get('handle')?.selfUs, 15_000);
  assert.equal(byName.get('handle')?.totalUs, 50_000, 'the recursive call is inside the outer one, not added to it');
  assert.equal(byName.has('(idle)'), false);
  assert.deepEqual(areaTimes(functionTimes(profile)).map((area) => [area.area, area.selfUs]), [['native', 35_000], ['(garbage collector)', 20_000], ['src/ingress', 15_000]]);
  const svg = renderFlameSvg(profile, 'handmade <test>', 'sub');
  assert.match(svg, /^<\?xml/);
  assert.match(svg, /handmade &lt;test&gt;/);
  // Full width (1180 px) is the 70 ms of busy time: handle's 50 ms is 842.86 px.
  assert.match(svg, /<title>handle dist\/src\/ingress\/a\.js:10: 50\.0 ms, 71\.43% of busy \(self 15\.0 ms\)<\/title><rect x="10\.00" y="[0-9]+" width="842\.86"/);
  assert.equal(svg.includes('(idle)'), false);
});

test('areas: our folders, packages, Node and V8 apart', () => {
  assert.equal(areaOf('f', `file://${repoRoot}/dist/src/sink/copy-encoder.js`), 'src/sink');
  assert.equal(areaOf('f', `file://${repoRoot}/node_modules/@trufflesuite/uws-js-unofficial/uws.js`), '@trufflesuite/uws-js-unofficial');
  assert.equal(areaOf('f', `file://${repoRoot}/node_modules/pg/lib/client.js`), 'pg');
  assert.equal(areaOf('f', 'node:internal/timers'), 'node internals');
  assert.equal(areaOf('(garbage collector)', ''), '(garbage collector)');
  assert.equal(areaOf('writev', ''), 'native');
});

test('a real engine under --cpu-prof: one profile per thread, ingress on main, the actor on its thread', async () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'floodgate-prof-test-'));
  try {
    const scenario = parseScenario({ name: 'tooling-profile', model: 'closed', eventsPerRequest: 100, phases: [{ durationS: 2, concurrency: 8 }], clients: 1 }, 'test');
    const result = await runScenario(scenario, { databaseUrl: serverUrl(), engineNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${directory}`, '--cpu-prof-interval=500'] });
    assert.ok(result.verification.ok);
    const threads = readProfiles(directory, repoRoot);
    // The third thread is the delivery actor's (idle here: no subscription), named delivery-0
    // when its samples show its code, else by thread id.
    const names = threads.map((entry) => entry.thread).sort();
    assert.deepEqual(names.filter((name) => name === 'main' || name.startsWith('actor-')), ['actor-0', 'main']);
    assert.ok(names.length === 3 && /^(delivery-0|worker-\d+)$/.test(names.find((name) => name !== 'main' && !name.startsWith('actor-')) ?? ''), names.join(', '));
    const areasOf = (thread: string): string[] => (threads.find((entry) => entry.thread === thread)?.areas ?? assert.fail(thread)).map((area) => area.area);
    assert.ok(areasOf('main').includes('src/ingress'), areasOf('main').join(', '));
    assert.ok(areasOf('actor-0').includes('src/actors') && areasOf('actor-0').includes('src/sink'), areasOf('actor-0').join(', '));
    for (const entry of threads) assert.ok(entry.profile.busyUs > 0 && entry.profile.busyUs <= entry.profile.wallUs * 1.01, `${entry.thread}: ${entry.profile.busyUs} of ${entry.profile.wallUs}`);
    const markdown = renderProfileMarkdown({ scenario: 'tooling-profile', eventsAcknowledged: result.totals.eventsAcknowledged, eventsPerS: result.totals.eventsPerS, startedAt: result.run.startedAt, commit: null, machine: 'test', intervalUs: 500 }, threads, new Map([['main', 'main.svg']]));
    assert.match(markdown, /\| main \| [0-9.]+ \| [0-9]+ \| main\.svg \|/);
    assert.match(markdown, /## actor-0/);
    const record = JSON.parse(JSON.stringify(profileRecord({ scenario: 'tooling-profile', eventsAcknowledged: 1, eventsPerS: 1, startedAt: '', commit: null, machine: 'test', intervalUs: 500 }, threads))) as { threads: { thread: string; busyUs: number; functions: { selfUs: number }[] }[] };
    assert.deepEqual(record.threads.map((entry) => entry.thread), threads.map((entry) => entry.thread));
    for (const entry of record.threads) assert.ok(entry.functions.length > 0 && (entry.functions[0]?.selfUs ?? 0) <= entry.busyUs);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
