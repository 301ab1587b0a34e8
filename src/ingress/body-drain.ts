/**
 * Lingering close: when a request is refused while its body is still arriving (413, 415,
 * 400…), the rest of the body is read and thrown away before the answer is written, within
 * a byte bound and a time bound, and the connection is then closed.
 *
 * Closing a socket whose receive buffer still holds unread bytes makes the kernel send a
 * reset, and a client still writing its body (Node's fetch, undici) then fails with EPIPE
 * or "other side closed" without ever reading the answer. nginx avoids this by reading
 * after its answer ("lingering close"). uWebSockets.js cannot do exactly that: a response
 * that has ended may no longer be touched, not even to close it, while its onData keeps
 * firing for the rest of the body — so a client that never stops sending could never be
 * cut off. The answer is therefore held until the body has ended or a bound is hit, and
 * then written with `end(body, true)`: after a complete body the close is a clean FIN.
 *
 *   refused ─▶ discard chunks ─┬─ body ended ──────────────────▶ answer, close (clean)
 *                              ├─ > lingerBytesMax discarded ──▶ answer, close (may reset)
 *                              ├─ lingerIdleMs without a byte ─▶ answer, close
 *                              └─ lingerMs elapsed ────────────▶ answer, close (may reset)
 */
import type { UwsHttpResponse } from './uws';

/**
 * The bounds of one linger. 64 MiB lets a client that sends a few times the default
 * bodyBytesMax (10 MiB) before reading the answer still get it, and 5 s (nginx's default
 * lingering_timeout) covers that much at about 100 Mbit/s; a client silent for 1 s is not
 * sending but waiting for the answer (a stalled or Expect-ing client), so it gets it then.
 * Discarding copies into a buffer uWS reuses: a linger holds a socket and timers, no memory.
 */
export const lingerBytesMax = 64 * 1024 * 1024;
export const lingerMs = 5_000;
export const lingerIdleMs = 1_000;

export interface BodyDrain {
  /** Takes the next chunk's size; the answer is written when this chunk ends the linger. */
  readonly discard: (byteLength: number, isLast: boolean) => void;
  /** Stops the timers without answering: the client went away. */
  readonly cancel: () => void;
}

/**
 * Whether a body of which the client declared `remainingBytes` more (null: not declared)
 * can be drained within the bounds; if not, the answer is written at once, and the client
 * may see a reset: nothing could be done for it within our limits.
 */
export function isDrainable(remainingBytes: number | null): boolean {
  return remainingBytes === null || remainingBytes <= lingerBytesMax;
}

/**
 * Starts a linger that calls `answer` exactly once: when the body ends, when more than
 * lingerBytesMax bytes were discarded, after lingerMs, or after lingerIdleMs without a byte.
 */
export function startBodyDrain(answer: () => void): BodyDrain {
  let discarded = 0;
  let ended = false;
  const stop = (): void => {
    ended = true;
    clearTimeout(timer);
    clearTimeout(idleTimer);
  };
  const end = (): void => {
    if (ended) return;
    stop();
    answer();
  };
  const timer = setTimeout(end, lingerMs);
  const idleTimer = setTimeout(end, lingerIdleMs);
  return {
    discard: (byteLength, isLast) => {
      if (ended) return;
      discarded += byteLength;
      if (isLast || discarded > lingerBytesMax) end();
      else idleTimer.refresh();
    },
    cancel: stop,
  };
}

/**
 * Drains a body nothing of which was read yet (a request refused on its headers), then
 * answers; returns the cancel to call on abort. The caller has attached res.onAborted.
 */
export function drainBodyThenAnswer(res: UwsHttpResponse, contentLength: number | null, answer: () => void): () => void {
  // Answered at once, the response may not be touched again: no onData is attached.
  if (!isDrainable(contentLength)) {
    answer();
    return () => undefined;
  }
  const drain = startBodyDrain(answer);
  res.onData((chunk, isLast) => drain.discard(chunk.byteLength, isLast));
  return drain.cancel;
}
