/**
 * A key's rate limit as the CLI (`--events-per-s N [--burst-events N]`) and POST /v1/keys
 * (`"events_per_s": N, "burst_events": N`) give it: whole numbers from 1 to the column's
 * int4 maximum; the burst defaults to the rate (one second's worth) and needs a rate.
 * Omitting both makes an unlimited key.
 */
import type { KeyLimitFields } from '../auth/key-store';

/** api_keys.events_per_s and burst_events are PostgreSQL integers. */
export const keyLimitMax = 2_147_483_647;

export type ParsedKeyLimit = { readonly ok: true; readonly limit: KeyLimitFields } | { readonly ok: false; readonly message: string };

/**
 * `names` are how the caller spells the two fields in its messages (flags or JSON fields);
 * flags arrive as text, JSON fields must be numbers (a string "5" in JSON is refused).
 */
export function parseKeyLimit(eventsPerS: unknown, burstEvents: unknown, names: readonly [string, string], from: 'flags' | 'json'): ParsedKeyLimit {
  const rate = wholeNumber(eventsPerS, names[0], from);
  if (!rate.ok) return rate;
  const burst = wholeNumber(burstEvents, names[1], from);
  if (!burst.ok) return burst;
  if (rate.value === null) {
    return burst.value === null ? { ok: true, limit: { eventsPerS: null, burstEvents: null } } : { ok: false, message: `${names[1]} needs ${names[0]}` };
  }
  return { ok: true, limit: { eventsPerS: rate.value, burstEvents: burst.value ?? rate.value } };
}

function wholeNumber(value: unknown, name: string, from: 'flags' | 'json'): { ok: true; value: number | null } | { ok: false; message: string } {
  if (value === undefined || value === null) return { ok: true, value: null };
  const fromText = from === 'flags' && typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  const number = from === 'json' && typeof value === 'number' ? value : fromText;
  if (!Number.isInteger(number) || number < 1 || number > keyLimitMax) {
    return { ok: false, message: `${name} must be a whole number of events from 1 to ${keyLimitMax}` };
  }
  return { ok: true, value: number };
}
