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
 *                              └─ lingerMs elapsed ────────────▶ answer, close (may reset)
 */
import type { UwsHttpResponse } from './uws';

/**
 * The bounds of one linger. 64 MiB lets a client that sends a few times the default
 * bodyBytesMax (10 MiB) before reading the answer still get it, and 5 s (nginx's default
 * lingering_timeout) covers that much at about 100 Mbit/s; discarding is a copy into a
 * buffer uWS reuses, so a linger holds no memory of ours, only the socket and a timer.
 */
export const lingerBytesMax = 64 * 1024 * 1024;
export const lingerMs = 5_000;

export interface BodyDrain {
  /** Takes the next chunk's size; the answer is written when this chunk ends the linger. */
  readonly discard: (byteLength: number, isLast: boolean) => void;
  /** Stops the timer without answering: the client went away. */
  readonly cancel: () => void;
}

/**
 * Starts a linger that calls `answer` exactly once: when the body ends, when more than
 * lingerBytesMax bytes were discarded, or after lingerMs. `remainingBytes` is what the
 * client declared it still has to send (null without Content-Length): a declared rest past
 * the byte bound could never be drained, so the answer is written at once.
 */
export function startBodyDrain(remainingBytes: number | null, answer: () => void): BodyDrain {
  let discarded = 0;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    answer();
  };
  const timer = setTimeout(end, lingerMs);
  if (remainingBytes !== null && remainingBytes > lingerBytesMax) end();
  return {
    discard: (byteLength, isLast) => {
      if (ended) return;
      discarded += byteLength;
      if (isLast || discarded > lingerBytesMax) end();
    },
    cancel: () => {
      ended = true;
      clearTimeout(timer);
    },
  };
}

/**
 * Drains a body nothing of which was read yet (a request refused on its headers), then
 * answers; returns the cancel to call on abort. The caller has attached res.onAborted.
 */
export function drainBodyThenAnswer(res: UwsHttpResponse, contentLength: number | null, answer: () => void): () => void {
  const drain = startBodyDrain(contentLength, answer);
  res.onData((chunk, isLast) => drain.discard(chunk.byteLength, isLast));
  return drain.cancel;
}
