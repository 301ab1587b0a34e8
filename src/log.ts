/**
 * Structured logs: one JSON line per notable event (start, ready, batch failure, drain),
 * never per event on the hot path. Every component receives a `Logger` rather than
 * importing a global, so tests can pass a silent one.
 */
import pino from 'pino';
import type { LogLevel } from './config/config';

export type Logger = pino.Logger;

export function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { service: 'floodgate', ...bindings } });
}
