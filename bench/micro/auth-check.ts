/**
 * What a key costs a request on the main thread, without the sockets around it: reading
 * the credential from the headers, hashing the key and finding it (src/auth/key-cache.ts
 * does exactly this: keyHashText, one map read), the scope decision, and the
 * per-node token bucket a limited key spends from (100 tokens: one 100-event bulk
 * request). The load pair (sustained-bulk with and without a key) cannot resolve a cost
 * this small against its run-to-run noise; this gives the number per request to set
 * beside the busy time per event that pair reports.
 */
import { readCredential } from '../../src/auth/credentials';
import { decideScope, type GuardState } from '../../src/auth/guard';
import { generateKey, hashKey, keyHashText } from '../../src/auth/key-format';
import type { ActiveKey } from '../../src/auth/key-cache';
import { LocalBuckets } from '../../src/limits/local-buckets';
import { consume, type MicroSuite } from './micro-suite';

const eventsPerRequest = 100;
const keysCached = 1000;

export const suite: MicroSuite = {
  name: 'auth-check',
  description: 'Per request: the API key read from Authorization, hashed and looked up among 1,000 cached keys, its scope checked; then the per-node token bucket of a limited key (100 events).',
  tasks() {
    const byHash = new Map<string, ActiveKey>();
    const keys = Array.from({ length: keysCached }, () => generateKey());
    for (const [index, key] of keys.entries()) {
      byHash.set(hashKey(key).toString('base64'), { id: String(index + 1), name: `key-${index}`, scopes: new Set(['ingest']), rateLimit: null });
    }
    const state: GuardState = { mode: 'auto', keysExist: true, lookup: (key) => byHash.get(keyHashText(key)) };
    const headers = { authorization: [`Bearer ${keys[keysCached / 2] as string}`], apiKey: [] };
    const limit = { eventsPerS: 10_000_000, burstEvents: 10_000_000 };
    const buckets = new LocalBuckets();
    let nowMs = 0;
    return [
      {
        name: 'credential + lookup + scope',
        unitsPerCall: 1,
        unit: 'request',
        fn: () => consume(decideScope('ingest', readCredential(headers), state, () => true)),
      },
      {
        name: 'per-node token bucket, 100 events',
        unitsPerCall: 1,
        unit: 'request',
        fn: () => consume(buckets.take('key:bench', limit, eventsPerRequest, (nowMs += 1))),
      },
    ];
  },
};
