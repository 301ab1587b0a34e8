/**
 * `--api-key-scopes ingest[,read,…]`: the load run sends an API key, to measure what
 * authentication costs (the benchmark pair of issue 22: sustained-bulk with a key against
 * no auth). Only for an engine the runner starts itself:
 *
 *   runner ─▶ engine started with FLOODGATE_ADMIN_KEY = a fresh key (stored hashed at start-up)
 *          ─▶ POST /v1/keys with it: the load key (the scopes asked for) and a read key for
 *             GET /v1/stats (keys exist now, so that route needs one); the route refreshes
 *             the engine's key cache before answering, so the keys work at once
 *          ─▶ clients put `Authorization: Bearer <load key>` in their precomputed request head
 *
 * The load key carries a rate limit far above any load a run offers (loadKeyEventsPerS),
 * so the pair measures the limiter's check on every request as well as the key lookup,
 * never a refusal.
 *
 * The key is part of the head built once per client (http-connection.ts requestHead), so
 * a request costs the client nothing more; the engine pays the lookup it would in use.
 */
import { generateKey, parseScopes, type Scope } from '../../src/auth/key-format';

/** The flag's value as scopes, or a message naming the problem (src/auth's own rules). */
export function parseApiKeyScopes(text: string): { ok: true; scopes: Scope[] } | { ok: false; message: string } {
  const parsed = parseScopes(text);
  return parsed.ok ? parsed : { ok: false, message: `--api-key-scopes: ${parsed.message}` };
}

/** 10 million events/s with a burst as large: a limit every request passes through, none hits. */
export const loadKeyEventsPerS = 10_000_000;

export interface BenchKeys {
  /** Sent by the load clients on every request. */
  readonly loadAuthorization: string;
  /** Sent by the runner for GET /v1/stats. */
  readonly statsAuthorization: string;
}

/** The bootstrap admin key for the engine's environment. */
export function benchAdminKey(): string {
  return generateKey();
}

export async function createBenchKeys(host: string, port: number, adminKey: string, scopes: readonly Scope[]): Promise<BenchKeys> {
  const create = async (name: string, keyScopes: readonly Scope[], limit: object = {}): Promise<string> => {
    const response = await fetch(`http://${host}:${port}/v1/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({ name, scopes: keyScopes, ...limit }),
    });
    const body = (await response.json()) as { key?: string };
    if (response.status !== 201 || typeof body.key !== 'string') throw new Error(`POST /v1/keys answered ${response.status}: ${JSON.stringify(body).slice(0, 200)}`);
    return `Bearer ${body.key}`;
  };
  const loadAuthorization = await create('bench-load', scopes, { events_per_s: loadKeyEventsPerS, burst_events: loadKeyEventsPerS });
  const statsAuthorization = scopes.includes('read') ? loadAuthorization : await create('bench-stats', ['read']);
  return { loadAuthorization, statsAuthorization };
}
