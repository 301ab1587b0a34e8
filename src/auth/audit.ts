/**
 * The audit trail: one log line per admin action, with who (key id and name, or the
 * loopback client when no key exists yet), what, and from which address. Lines carry
 * `audit: true` so they can be routed apart from the engine's other logs. Never a key,
 * a hash or a secret: only ids and names.
 */
import type { LimitSubject } from '../limits/rate-limiter';
import type { Logger } from '../log';

export interface Actor {
  /** null: a loopback client while no key exists (auto posture), or the CLI. */
  readonly keyId: string | null;
  readonly keyName: string | null;
  readonly address: string;
  /** The key's rate limit (src/limits), when it has one; the ingest handler spends from it. */
  readonly rateLimit?: LimitSubject | null;
}

export function auditLog(log: Pick<Logger, 'info'>, action: string, actor: Actor, details: Record<string, unknown> = {}): void {
  log.info({ audit: true, action, key_id: actor.keyId, key_name: actor.keyName, address: actor.address, ...details }, `audit: ${action}`);
}
