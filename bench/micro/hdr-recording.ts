/**
 * Recording one latency value: hdr-histogram-js built as WebAssembly and as plain JS,
 * and Node's perf_hooks.createHistogram. 1,000 values per call, spread like request
 * latencies (microseconds, 100 µs to ~1 s), recorded into histograms that live for the
 * whole run as the engine's would.
 */
import { createHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { type MicroSuite, type MicroTask } from './micro-suite';

const valuesPerCall = 1000;

export const suite: MicroSuite = {
  name: 'hdr-recording',
  description: 'recording one value: hdr-histogram-js WASM vs JS vs perf_hooks.createHistogram',
  prepare: () => hdr.initWebAssembly(),
  tasks(): MicroTask[] {
    // A fixed pseudo-random sequence (xorshift) so every run records the same values.
    let state = 0x2545f491;
    const values = Array.from({ length: valuesPerCall }, () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return 100 + Math.floor(Math.exp(((state >>> 0) / 2 ** 32) * 9));
    });
    const options = { lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 as const };
    const wasm = hdr.build({ ...options, useWebAssembly: true });
    const js = hdr.build({ ...options, useWebAssembly: false });
    const node = createHistogram({ lowest: 1, highest: 600_000_000, figures: 3 });
    const record = (recorder: (value: number) => void) => (): number => {
      for (let i = 0; i < valuesPerCall; i++) recorder(values[i] as number);
      return valuesPerCall;
    };
    const task = (name: string, fn: () => unknown): MicroTask => ({ name, unitsPerCall: valuesPerCall, unit: 'value', fn });
    return [
      task('hdr-histogram-js WASM recordValue', record((value) => wasm.recordValue(value))),
      task('hdr-histogram-js JS recordValue', record((value) => js.recordValue(value))),
      task('perf_hooks.createHistogram record', record((value) => node.record(value))),
    ];
  },
};
