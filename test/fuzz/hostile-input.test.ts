/**
 * The fuzz run: about a thousand hostile bodies, in categories, from a seeded PRNG, sent
 * over real sockets to a real engine (uWS → rings → actor threads → PostgreSQL).
 *
 * Every answer must be a 4xx whose JSON body carries a catalogue code and a message —
 * a 2xx only where the body may happen to be valid (byte flips; attributes named
 * "constructor"), and then the database must hold exactly the events the answers
 * accepted. No 5xx, no hang, no crash; /healthz answers afterwards; memory stays bounded;
 * Object.prototype is untouched.
 *
 * A failure names its seed; replay it with FLOODGATE_FUZZ_SEED=<seed> npm test -- test/fuzz
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pack } from 'msgpackr';
import { errorCatalogue } from '../../src/errors';
import { post as postJson, startTestEngine, type TestEngine } from '../support/engine';
import { wireEvents } from '../support/wire-events';
import type { CaseGenerator, FuzzLimits, HostileCase } from './fuzz-cases';
import { hugeString, invalidUtf8, mislabelled, nestingBomb, notJson, pollutionMarkers, prototypeKeys, truncated } from './hostile-bodies';
import { byteFlip, gzipBomb, msgpackExtension, msgpackLengthBomb, overLimit, prepareGzipBombs, unknownEncoding } from './hostile-bytes';
import { Prng, fuzzSeed } from '../support/prng';
import { catalogueErrorOf, encodeRequest, exchange, headerOf, jsonOf, type RawAnswer } from './raw-http';

const limits: FuzzLimits = {
  bodyBytesMax: 1024 * 1024,
  bodyDecodedBytesMax: 4 * 1024 * 1024,
  eventsPerRequestMax: 5000,
  eventBytesMax: 64 * 1024,
  attributesBytesMax: 32 * 1024,
  attributesDepthMax: 32,
};
const bodyTimeoutMs = 1500;
/** Longer than bodyTimeoutMs, so a request the engine forgot shows as a hang, not a 408. */
const answerTimeoutMs = 5000;
const concurrency = 8;

/** Cases per category: 1,140 in all (640 must be refused; the 500 byte flips may be stored). */
const plan: ReadonlyArray<readonly [string, CaseGenerator, number]> = [
  ['truncated', truncated, 100],
  ['not-json', notJson, 60],
  ['mislabelled', mislabelled, 30],
  ['nesting', nestingBomb, 60],
  ['huge-string', hugeString, 60],
  ['invalid-utf8', invalidUtf8, 60],
  ['prototype-keys', prototypeKeys, 60],
  ['msgpack-length-bomb', msgpackLengthBomb, 80],
  ['msgpack-extension', msgpackExtension, 40],
  ['gzip-bomb', gzipBomb, 30],
  ['unknown-encoding', unknownEncoding, 30],
  ['over-limit', overLimit, 30],
  ['byte-flip', byteFlip, 500],
];

/**
 * Bounds on growth across the run, measured after forced collections. A run sends about
 * 50 MiB of bodies (measured 43-56 MiB), so keeping a sizeable share of them would cross
 * the heap or external bound; measured growth is printed in the test's diagnostics
 * (typically +3 MiB heap, +3 MiB external, +70-110 MiB RSS: V8 and malloc keep pages
 * they used for the large bodies).
 */
const heapGrowthBytesMax = 32 * 1024 * 1024;
const externalGrowthBytesMax = 32 * 1024 * 1024;
const rssGrowthBytesMax = 256 * 1024 * 1024;

let harness: TestEngine;

before(async () => {
  harness = await startTestEngine({ ...limits, bodyTimeoutMs });
});
after(async () => {
  await harness?.close();
});

/** A case without its body (keeping ~50 MiB of bodies alive would defeat the memory check). */
type CaseSummary = Pick<HostileCase, 'category' | 'name' | 'expect'> & { readonly path: string };

interface Outcome {
  readonly index: number;
  readonly hostile: CaseSummary;
  readonly answer: RawAnswer;
  readonly sentBytes: number;
}

test('about a thousand hostile bodies: only 4xx with catalogue codes, nothing stored but what was accepted', async (t) => {
  const seed = fuzzSeed();
  t.diagnostic(`seed ${seed} (replay: FLOODGATE_FUZZ_SEED=${seed})`);
  prepareGzipBombs(limits);
  const prototypes = prototypeSnapshot();
  await warmUp();
  const before = settledMemory();

  const cases = plan.flatMap(([, generator, count]) => Array.from({ length: count }, () => generator));
  const outcomes = await runAll(cases, seed);

  const afterRun = settledMemory();
  const failures = outcomes.map((outcome) => judge(outcome)).filter((failure): failure is string => failure !== null);
  for (const line of summary(outcomes)) t.diagnostic(line);
  t.diagnostic(`memory before: ${formatMemory(before)}; after: ${formatMemory(afterRun)}`);
  assert.deepEqual(failures.slice(0, 20), [], `seed ${seed}: ${failures.length} of ${outcomes.length} answers were wrong`);

  assert.ok(afterRun.heapUsed - before.heapUsed < heapGrowthBytesMax, `seed ${seed}: heap grew by ${afterRun.heapUsed - before.heapUsed} bytes`);
  assert.ok(afterRun.external - before.external < externalGrowthBytesMax, `seed ${seed}: external memory grew by ${afterRun.external - before.external} bytes`);
  assert.ok(afterRun.rss - before.rss < rssGrowthBytesMax, `seed ${seed}: RSS grew by ${afterRun.rss - before.rss} bytes`);
  assert.deepEqual(prototypeSnapshot(), prototypes, `seed ${seed}: a built-in prototype changed`);
  for (const marker of pollutionMarkers) assert.equal(({} as Record<string, unknown>)[marker], undefined, `seed ${seed}: Object.prototype.${marker} exists`);

  const accepted = outcomes.reduce((sum, outcome) => sum + acceptedBy(outcome), 0);
  const [stored] = await harness.query<{ rows: number; ids: number }>('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events');
  t.diagnostic(`events accepted by 2xx answers: ${accepted}; rows stored: ${stored?.rows}`);
  assert.deepEqual(stored, { rows: accepted, ids: accepted }, `seed ${seed}: the database does not hold exactly the accepted events`);

  const health = await fetch(`${harness.baseUrl}/healthz`);
  assert.equal(health.status, 200);
  const healthy = await postJson(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(10, `after-fuzz-${seed}`) }));
  assert.equal(healthy.status, 200, healthy.text);
  assert.equal(healthy.json.accepted, 10);
});

/** Each case gets its own PRNG, so one case replays without the others. */
function caseRng(seed: number, index: number): Prng {
  return new Prng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

async function runAll(generators: readonly CaseGenerator[], seed: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < generators.length) {
      const index = next++;
      const generator = generators[index] as CaseGenerator;
      const hostile = generator(caseRng(seed, index), `fz${seed.toString(36)}-${index}`, limits);
      const pieces = encodeRequest(hostile.request);
      const answer = await exchange(harness.engine.port, pieces, { timeoutMs: answerTimeoutMs });
      const { category, name, expect, request } = hostile;
      outcomes.push({ index, hostile: { category, name, expect, path: request.path }, answer, sentBytes: pieces.reduce((sum, piece) => sum + piece.length, 0) });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes.sort((a, b) => a.index - b.index);
}

/** Why an answer breaks the contract, or null when it keeps it. */
function judge({ index, hostile, answer }: Outcome): string | null {
  const where = `case ${index} ${hostile.category}: ${hostile.name}`;
  if (answer.timedOut) return `${where}: no answer within ${answerTimeoutMs} ms`;
  if (answer.status === null) return `${where}: connection closed without an answer`;
  const body = jsonOf(answer.body);
  const shown = answer.body.toString('utf8', 0, Math.min(answer.body.length, 300));
  if (answer.status >= 200 && answer.status < 300) {
    return hostile.expect === 'refusedOrStored' && body !== undefined ? null : `${where}: accepted with ${answer.status}: ${shown}`;
  }
  if (answer.status < 400 || answer.status >= 500) return `${where}: status ${answer.status}: ${shown}`;
  if (headerOf(answer, 'content-type') !== 'application/json') return `${where}: ${answer.status} is not JSON`;
  const error = catalogueErrorOf(body);
  if (error === null) return `${where}: ${answer.status} without a catalogue code and message: ${shown}`;
  const v1 = hostile.path.startsWith('/v1/');
  if (v1 && errorCatalogue[error.code].status !== answer.status) return `${where}: ${error.code} came with ${answer.status}`;
  const requestId = (body as { request_id?: unknown }).request_id;
  if (requestId !== undefined && requestId !== headerOf(answer, 'x-request-id')) return `${where}: X-Request-ID differs from request_id`;
  return null;
}

/** Events a 2xx answer reports as stored by this request. */
function acceptedBy({ hostile, answer }: Outcome): number {
  if (answer.status === null || answer.status < 200 || answer.status >= 300) return 0;
  const body = jsonOf(answer.body) as { accepted?: number; status?: string; results?: { accepted?: number } };
  if (hostile.path === '/webhook/events') return body.status === 'accepted' ? 1 : 0;
  return body.results?.accepted ?? body.accepted ?? 0;
}

function summary(outcomes: readonly Outcome[]): string[] {
  const byCategory = new Map<string, Map<string, number>>();
  for (const { hostile, answer } of outcomes) {
    const statuses = byCategory.get(hostile.category) ?? new Map<string, number>();
    const status = answer.status === null ? 'none' : String(answer.status);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    byCategory.set(hostile.category, statuses);
  }
  const lines = [...byCategory].map(([category, statuses]) => `${category}: ${[...statuses].sort().map(([status, n]) => `${n}×${status}`).join(' ')}`);
  const slowest = Math.max(...outcomes.map((outcome) => outcome.answer.elapsedMs));
  const sentMib = outcomes.reduce((sum, outcome) => sum + outcome.sentBytes, 0) / 1024 / 1024;
  return [`${outcomes.length} cases, ${sentMib.toFixed(1)} MiB sent; slowest answer ${slowest.toFixed(0)} ms`, ...lines];
}

/**
 * A few ordinary requests first, so lazily made pools and compiled code are not counted as
 * growth. The test's own msgpackr keeps its largest output buffer for reuse (measured:
 * ~12 MiB after packing 1 MB bodies), so it packs its largest value here too.
 */
async function warmUp(): Promise<void> {
  pack({ warmUp: 'x'.repeat(2 * limits.bodyBytesMax) });
  for (let i = 0; i < 5; i++) {
    const answer = await postJson(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(20, `warm-${i}-${Date.now()}`) }));
    assert.equal(answer.status, 200, answer.text);
  }
  await harness.query('DELETE FROM events');
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function settledMemory(): NodeJS.MemoryUsage {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage();
}

function formatMemory(memory: NodeJS.MemoryUsage): string {
  const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `rss ${mib(memory.rss)}, heapUsed ${mib(memory.heapUsed)}, external ${mib(memory.external)}, arrayBuffers ${mib(memory.arrayBuffers)}`;
}

function prototypeSnapshot(): Record<string, string[]> {
  const names = (target: object): string[] => Reflect.ownKeys(target).map(String).sort();
  return { object: names(Object.prototype), array: names(Array.prototype), function: names(Function.prototype), string: names(String.prototype) };
}
