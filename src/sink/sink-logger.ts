/**
 * The logger shape the sink accepts. A pino logger fits it; tests pass a small recorder.
 * `debug` is optional because only the embedded PostgreSQL uses it (for the server's own
 * chatter, which is too noisy for `info`).
 */
export interface SinkLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

/**
 * Log fields for an error. pino serialises only the `err` key specially; an Error under any
 * other key would print as `{}`, so the sink logs its code and message explicitly.
 */
export function errorFields(error: unknown): { code: string | null; message: string } {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return {
    code: typeof code === 'string' ? code : null,
    message: error instanceof Error ? error.message : String(error),
  };
}
