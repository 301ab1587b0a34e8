/**
 * The engine's SharedArrayBuffer ring (js-ring-threads.ts) beside the same SPSC design in
 * C11 (native-bench/spsc-ring.c, gcc -O2 -pthread), over two threads, with the record
 * sizes the engine really writes: the envelope of a 1-event request and of a 100-event
 * request's share for one of two actors (50 events). Each is run publishing every record
 * and every 64 records.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../common/results';
import { envelopeOf } from '../micro/ring';
import { runJsRing, type RingRunResult } from './js-ring-threads';

export interface RingComparison {
  readonly envelopeEvents: number;
  readonly js: RingRunResult;
  readonly c: RingRunResult;
}

/** Bytes pushed through per measurement: enough for about a second at each side's speed. */
const jsBytesPerRun = 1e9;
const cBytesPerRun = 1e10;

export function compileSpscRing(): string {
  const directory = path.join(os.tmpdir(), 'floodgate-native-bench');
  mkdirSync(directory, { recursive: true });
  const binary = path.join(directory, 'spsc-ring');
  execFileSync('gcc', ['-O2', '-std=c11', '-Wall', '-pthread', '-o', binary, path.join(repoRoot, 'native-bench', 'spsc-ring.c')], { stdio: 'inherit' });
  return binary;
}

function runC(binary: string, payloadBytes: number, records: number, publishEvery: number): RingRunResult {
  const output = execFileSync(binary, [String(payloadBytes), String(records), String(publishEvery)], { encoding: 'utf8' });
  return JSON.parse(output) as RingRunResult;
}

export async function runRingComparison(log: (line: string) => void): Promise<RingComparison[]> {
  const binary = compileSpscRing();
  const results: RingComparison[] = [];
  for (const envelopeEvents of [1, 50]) {
    const payloadBytes = envelopeOf(envelopeEvents).byteLength;
    for (const publishEvery of [1, 64]) {
      const js = await runJsRing(payloadBytes, Math.ceil(jsBytesPerRun / payloadBytes), publishEvery);
      const c = runC(binary, payloadBytes, Math.ceil(cBytesPerRun / payloadBytes), publishEvery);
      log(`  ${payloadBytes} B records (${envelopeEvents}-event envelope), publish every ${publishEvery}: JS ${js.recordsPerS.toLocaleString('en-US')}/s (${js.megabytesPerS} MB/s), C ${Math.round(c.recordsPerS).toLocaleString('en-US')}/s (${c.megabytesPerS} MB/s)`);
      if (!js.checksumOk || !c.checksumOk) throw new Error('ring comparison: a checksum did not match');
      results.push({ envelopeEvents, js, c });
    }
  }
  return results;
}
