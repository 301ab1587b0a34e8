import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adjustScenario, listScenarioNames, loadScenario, parseScenario, ScenarioError, scenarioDurationS } from '../../bench/load/scenario';

const minimal = {
  name: 'tiny',
  model: 'closed',
  phases: [{ durationS: 2, concurrency: 4 }],
};

function problemsOf(raw: unknown): readonly string[] {
  try {
    parseScenario(raw, 'test');
  } catch (error) {
    assert.ok(error instanceof ScenarioError);
    return error.problems;
  }
  assert.fail('expected a ScenarioError');
}

test('every scenario in bench/scenarios.json parses, has a unique name and names only known fields', () => {
  const names = listScenarioNames();
  assert.ok(names.length >= 10, `only ${names.length} scenarios`);
  assert.equal(new Set(names).size, names.length, 'a scenario name is used twice');
  for (const name of names) {
    const scenario = loadScenario(name);
    assert.equal(scenario.name, name);
    assert.ok(scenario.description.length > 0, `${name} has no description`);
    assert.ok(scenarioDurationS(scenario) > 0);
  }
});

test('the scenarios the brief asks for exist with their defining numbers', () => {
  const bulk = loadScenario('sustained-bulk');
  assert.equal(bulk.eventsPerRequest, 100);
  assert.equal(loadScenario('large-bulk').eventsPerRequest, 1000);
  assert.equal(loadScenario('webhook-single').route, '/webhook/events');
  assert.equal(loadScenario('msgpack-bulk').format, 'msgpack');
  assert.equal(loadScenario('sustained-bulk-async').engineEnv.FLOODGATE_ACK, 'async');
  assert.equal(loadScenario('open-rate-bulk').model, 'open');
  const spike = loadScenario('spike');
  assert.ok((spike.phases[1]?.concurrency ?? 0) > 10 * (spike.phases[0]?.concurrency ?? 0), 'the spike phase must be a sudden jump');
  for (const [name, users, events] of [['eventflux-k6-100x100', 100, 100], ['eventflux-k6-50x1000', 50, 1000]] as const) {
    const k6 = loadScenario(name);
    assert.equal(k6.phases[0]?.concurrency, users);
    assert.equal(k6.eventsPerRequest, events);
    assert.equal(k6.thinkTimeMs, 100);
  }
  assert.equal(loadScenario('baseline-sustained-bulk').target, 'baseline');
  assert.throws(() => loadScenario('no-such-scenario'), /no scenario named "no-such-scenario"/);
});

test('defaults fill what a scenario leaves out', () => {
  const scenario = parseScenario(minimal, 'test');
  assert.equal(scenario.target, 'floodgate');
  assert.equal(scenario.route, '/v1/events/bulk');
  assert.equal(scenario.format, 'json');
  assert.equal(scenario.eventsPerRequest, 100);
  assert.equal(scenario.clients, 2);
  assert.equal(scenario.thinkTimeMs, 0);
  assert.deepEqual(scenario.engineEnv, {});
  assert.equal(scenario.phases[0]?.label, 'phase 1');
});

test('unknown fields are errors, at the top level and inside phases', () => {
  assert.match(problemsOf({ ...minimal, concurency: 3 }).join('\n'), /unknown field "concurency"/);
  assert.match(problemsOf({ ...minimal, phases: [{ durationS: 1, concurrency: 1, rate: 5 }] }).join('\n'), /phases\[0\]\.unknown field "rate"/);
});

test('invalid values are reported by field, all at once', () => {
  const problems = problemsOf({ name: 'Bad Name', model: 'sideways', eventsPerRequest: 0, clients: 99, phases: [] });
  const text = problems.join('\n');
  assert.match(text, /name must be kebab-case/);
  assert.match(text, /model must be one of closed, open/);
  assert.match(text, /eventsPerRequest must be an integer in 1\.\.5000/);
  assert.match(text, /clients must be an integer in 1\.\.16/);
  assert.match(text, /phases must be a non-empty array/);
});

test('combinations that cannot work are refused', () => {
  assert.match(problemsOf({ ...minimal, route: '/webhook/events' }).join('\n'), /eventsPerRequest must be 1 for \/webhook\/events/);
  assert.match(problemsOf({ ...minimal, target: 'baseline', format: 'msgpack' }).join('\n'), /baseline service takes JSON only/);
  assert.match(problemsOf({ ...minimal, phases: [{ durationS: 1, ratePerS: 10 }] }).join('\n'), /ratePerS does not apply to the closed model/);
  assert.match(problemsOf({ ...minimal, model: 'open', phases: [{ durationS: 1, ratePerS: 10 }], thinkTimeMs: 5 }).join('\n'), /thinkTimeMs applies to the closed model only/);
  assert.match(problemsOf({ ...minimal, engineEnv: { DATABASE_URL: 'postgres://x' } }).join('\n'), /only FLOODGATE_\* settings/);
});

test('a warm-up phase keeps its duration when others scale; --rate replaces every open-model rate', () => {
  const scenario = parseScenario({ ...minimal, model: 'open', phases: [{ label: 'warm-up', durationS: 5, ratePerS: 50, warmup: true }, { durationS: 30, ratePerS: 500 }] }, 'test');
  const adjusted = adjustScenario(scenario, { durationScale: 0.1, ratePerS: 300 });
  assert.deepEqual(adjusted.phases.map((phase) => [phase.durationS, phase.ratePerS, phase.warmup]), [[5, 300, true], [3, 300, false]]);
  assert.match(problemsOf({ ...minimal, phases: [{ durationS: 1, concurrency: 1, warmup: 'yes' }] }).join('\n'), /phases\[0\]\.warmup must be true or false/);
});

test('adjusting a scenario scales durations and switches the target, and stays valid', () => {
  const adjusted = adjustScenario(loadScenario('spike'), { target: 'baseline', durationScale: 0.1 });
  assert.equal(adjusted.target, 'baseline');
  assert.deepEqual(adjusted.phases.map((phase) => phase.durationS), [1, 1.5, 1]);
  assert.deepEqual(adjusted.phases.map((phase) => phase.concurrency), [4, 128, 4]);
});
