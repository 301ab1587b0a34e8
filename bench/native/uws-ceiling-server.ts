/**
 * The HTTP front end's ceiling: uWebSockets.js (the engine's own loader, which refuses the
 * slow JS fallback) answering every POST with 202 after reading the whole body, and
 * nothing else: no decoding, no validation, no rings. Whatever the engine adds on top is
 * measured against this.
 *
 *   node dist/bench/native/uws-ceiling-server.js <port>
 *
 * It copies each body chunk into a growing list, as the engine's body reader must (the
 * ArrayBuffer uWS hands to onData is detached when the callback returns), prints
 * "listening" once ready, and on SIGTERM prints {"requests", "bodyBytes"} and exits.
 */
import { loadUws, type UwsHttpRequest, type UwsHttpResponse } from '../../src/ingress/uws';

const answer = '{"accepted":1}';
/** Reported on SIGTERM so the runner can check that full bodies arrived. */
const totals = { requests: 0, bodyBytes: 0 };

function readAndAnswer(res: UwsHttpResponse, _req: UwsHttpRequest): void {
  const call = { aborted: false };
  res.onAborted(() => {
    call.aborted = true;
  });
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (!isLast || call.aborted) return;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    totals.requests += 1;
    totals.bodyBytes += body.length;
    res.cork(() => {
      res.writeStatus('202 Accepted').writeHeader('Content-Type', 'application/json').end(answer);
    });
  });
}

const port = Number(process.argv[2] ?? 0);
const { uws } = loadUws({ allowFallback: false });
uws
  .App()
  .post('/*', readAndAnswer)
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write(`cannot listen on port ${port}\n`);
      process.exit(1);
    }
    process.stdout.write('listening\n');
  });
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify(totals)}\n`, () => process.exit(0));
});
