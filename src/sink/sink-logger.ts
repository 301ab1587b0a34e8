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
