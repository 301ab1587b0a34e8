/** A key's limit as the CLI flags and the JSON body give it: valid and invalid inputs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyLimitMax, parseKeyLimit } from '../../src/limits/key-limit';

const flags = ['--events-per-s', '--burst-events'] as const;
const fields = ['events_per_s', 'burst_events'] as const;

test('none: unlimited; a rate alone: burst = rate; both as given', () => {
  assert.deepEqual(parseKeyLimit(undefined, undefined, flags, 'flags'), { ok: true, limit: { eventsPerS: null, burstEvents: null } });
  assert.deepEqual(parseKeyLimit('50', undefined, flags, 'flags'), { ok: true, limit: { eventsPerS: 50, burstEvents: 50 } });
  assert.deepEqual(parseKeyLimit(50, 500, fields, 'json'), { ok: true, limit: { eventsPerS: 50, burstEvents: 500 } });
  assert.deepEqual(parseKeyLimit(null, null, fields, 'json'), { ok: true, limit: { eventsPerS: null, burstEvents: null } });
  assert.deepEqual(parseKeyLimit(String(keyLimitMax), '1', flags, 'flags'), { ok: true, limit: { eventsPerS: keyLimitMax, burstEvents: 1 } });
});

test('refused: zero, negative, fractions, text, too large, a burst without a rate, strings in JSON', () => {
  const cases: Array<[unknown, unknown, 'flags' | 'json', string]> = [
    ['0', undefined, 'flags', '--events-per-s must be a whole number'],
    ['-5', undefined, 'flags', '--events-per-s must be a whole number'],
    ['1.5', undefined, 'flags', '--events-per-s must be a whole number'],
    ['ten', undefined, 'flags', '--events-per-s must be a whole number'],
    [String(keyLimitMax + 1), undefined, 'flags', '--events-per-s must be a whole number'],
    ['10', '0', 'flags', '--burst-events must be a whole number'],
    [undefined, '10', 'flags', '--burst-events needs --events-per-s'],
    [1.5, undefined, 'json', 'events_per_s must be a whole number'],
    ['5', undefined, 'json', 'events_per_s must be a whole number'],
    [5, true, 'json', 'burst_events must be a whole number'],
    [Number.NaN, undefined, 'json', 'events_per_s must be a whole number'],
  ];
  for (const [rate, burst, from, message] of cases) {
    const parsed = parseKeyLimit(rate, burst, from === 'flags' ? flags : fields, from);
    assert.equal(parsed.ok, false, `${String(rate)} ${String(burst)}`);
    if (!parsed.ok) assert.ok(parsed.message.startsWith(message), parsed.message);
  }
});
