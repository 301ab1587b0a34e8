/**
 * The shape every micro-benchmark file exports, and the fixtures they share: the same
 * ~250-byte events the load generator sends (bench/load/bodies.ts), turned into
 * ValidEvents by the engine's own validation, so micro and load numbers describe the
 * same data.
 */
import { defaultConfig } from '../../src/config/load-config';
import type { ValidEvent } from '../../src/event';
import { validateEvent, type ValidationContext } from '../../src/validate/validate-event';
import { benchEvent } from '../load/bodies';

export interface MicroTask {
  readonly name: string;
  /** What one call processes (events, rows, values…): results are reported per unit. */
  readonly unitsPerCall: number;
  readonly unit: string;
  readonly fn: () => unknown;
}

export interface MicroSuite {
  /** Also the file name under bench/micro (kebab-case). */
  readonly name: string;
  /** The hot function measured, and why the variants are worth comparing. */
  readonly description: string;
  /** Anything asynchronous the tasks need first (WASM initialisation). */
  prepare?(): Promise<void>;
  /** Builds the tasks (and their fixtures) when the suite is about to run. */
  tasks(): MicroTask[];
}

export const fixtureNowMs = Date.now();

export function validationContext(): ValidationContext {
  return { receivedAtMs: fixtureNowMs, idempotencyKey: null, limits: defaultConfig() };
}

/** `count` raw events as a client sends them, with distinct ids. */
export function wireEvents(count: number, prefix = 'micro'): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, index) => benchEvent(`${prefix}-${String(index).padStart(8, '0')}`, index, fixtureNowMs));
}

/** The same events after the engine's validation (so attributes are JSON text, times µs). */
export function validEvents(count: number, prefix = 'micro'): ValidEvent[] {
  const context = validationContext();
  return wireEvents(count, prefix).map((raw, index) => {
    const result = validateEvent(raw, index, context);
    if (!result.ok) throw new Error(`fixture event ${index} is invalid: ${result.error.message}`);
    return result.event;
  });
}

/** Keeps results alive so the JIT cannot drop the work that produced them. */
export let sink: unknown = null;
export function consume(value: unknown): void {
  sink = value;
}
