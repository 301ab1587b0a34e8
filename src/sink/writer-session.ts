import pg from 'pg';
import { KiB, settingsByKey } from '../config/settings';
import { errorCodeOf } from './retry-policy';
import { errorFields, type SinkLogger } from './sink-logger';

/**
 * How a batch writer's PostgreSQL session is opened and set up.
 *
 * Why `backend_flush_after`: the COPY backend writes the heap and index pages it evicts
 * into the kernel's page cache, and with PostgreSQL's default (0 on Linux) nothing makes
 * the kernel write them out until they are 30 s old (vm.dirty_expire_centisecs). Then it
 * writes hundreds of MB at once and every WAL fsync behind them waits for it. With 256 kB
 * the backend asks the kernel to write each 256 kB as it goes (sync_file_range), and the
 * half-load durable commit p99 fell by an order of magnitude
 * (docs/decisions/0008-writer-backend-flush-after.md). It is a per-session setting
 * (PGC_USERSET), so no server configuration is needed.
 */
export interface WriterSessionOptions {
  /** backend_flush_after for the session, in bytes; 0 leaves the server's own setting. */
  readonly flushAfterBytes: number;
}

/** The writer session as the engine's defaults set it (src/config/settings.ts). */
export const defaultWriterSession: WriterSessionOptions = { flushAfterBytes: settingsByKey.writerFlushAfterBytes.default };

/** The statement that sets the session up, or null when nothing needs setting. */
export function writerSessionSql(options: WriterSessionOptions): string | null {
  if (options.flushAfterBytes === 0) return null;
  return `SET backend_flush_after = '${Math.floor(options.flushAfterBytes / KiB)}kB'`;
}

/**
 * Connects `client` (created by the caller, whose listeners must be attached before any
 * I/O) and applies the session settings. A server that refuses the setting (built
 * without sync_file_range, as on some platforms) costs one warning, not the connection:
 * the setting shapes I/O timing, never what is stored.
 */
export async function connectWriterSession(client: pg.Client, options: WriterSessionOptions, logger: SinkLogger): Promise<void> {
  try {
    await client.connect();
    const sql = writerSessionSql(options);
    if (sql !== null) await client.query(sql).catch((error: unknown) => {
      if (!isRefusedSetting(error)) throw error;
      logger.warn({ ...errorFields(error), setting: 'backend_flush_after' }, 'PostgreSQL refused the writer session setting; continuing without it');
    });
  } catch (error) {
    client.end().catch(() => undefined);
    throw error;
  }
}

/** 22023 invalid_parameter_value, 42704 undefined_object (unknown setting), 42501 insufficient_privilege. */
function isRefusedSetting(error: unknown): boolean {
  const code = errorCodeOf(error);
  return code === '22023' || code === '42704' || code === '42501';
}
