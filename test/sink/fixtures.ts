/**
 * Builders and helpers shared by the sink tests: events built directly as ValidEvent (so
 * tests can also build what validation would refuse), a recording logger, and a fresh
 * migrated database per test file.
 */
import pg from 'pg';
import type { ValidEvent } from '../../src/event';
import { EnvelopeEncoder } from '../../src/ring/envelope';
import { readEnvelope } from '../../src/ring/envelope-reader';
import type { BatchRow } from '../../src/sink/batch-writer';
import { migrate } from '../../src/sink/migrations';
import type { SinkLogger } from '../../src/sink/sink-logger';
import { createTestDatabase, type TestDatabase } from '../support/database';

/** 2026-03-14 15:09:26.535897 UTC: microseconds on purpose. */
export const baseUs = Date.UTC(2026, 2, 14, 15, 9, 26, 535) * 1000 + 897;
export const dayUs = 86_400_000_000;

let sequence = 0;

export function buildEvent(overrides: Partial<ValidEvent> = {}): ValidEvent {
  sequence += 1;
  return {
    eventId: `evt-${process.pid}-${sequence}`,
    eventType: 'page.viewed',
    source: 'web',
    actorId: `user-${sequence % 17}`,
    occurredAtUs: baseUs + sequence,
    attributesJson: `{"n":${sequence},"path":"/p/${sequence}"}`,
    ...overrides,
  };
}

export function buildRows(count: number, overrides: Partial<ValidEvent> = {}): BatchRow[] {
  return Array.from({ length: count }, () => ({ event: buildEvent(overrides), receivedAtUs: baseUs + 5_000_000 }));
}

/** Rows as an actor holds them: the events go through an envelope and are read back (RingEvent). */
export function ringRowsOf(events: readonly ValidEvent[], receivedAtUs = baseUs + 5_000_000): BatchRow[] {
  const encoder = new EnvelopeEncoder();
  encoder.begin(1, receivedAtUs);
  events.forEach((event, index) => encoder.add(index, event));
  const envelope = readEnvelope(encoder.finish());
  return envelope.events.map((event) => ({ event, receivedAtUs: envelope.receivedAtUs }));
}

export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error' | 'debug';
  readonly obj: object;
  readonly msg: string | undefined;
}

export function recordingLogger(): SinkLogger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    info: (obj, msg) => entries.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => entries.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => entries.push({ level: 'error', obj, msg }),
    debug: (obj, msg) => entries.push({ level: 'debug', obj, msg }),
  };
}

export interface MigratedDatabase extends TestDatabase {
  /** A client of the test's own, for checking what the code under test stored. */
  readonly client: pg.Client;
  close(): Promise<void>;
}

export async function createMigratedDatabase(): Promise<MigratedDatabase> {
  const database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  client.on('error', () => undefined);
  await client.connect();
  await migrate(client, recordingLogger());
  return {
    ...database,
    client,
    close: async () => {
      await client.end().catch(() => undefined);
      await database.drop();
    },
  };
}

export async function countRows(client: pg.ClientBase, table: string): Promise<number> {
  const result = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return result.rows[0]?.n ?? -1;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
