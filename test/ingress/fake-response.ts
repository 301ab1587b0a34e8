/**
 * A stand-in for uWebSockets.js's HttpResponse in unit tests of the ingress helpers: it
 * records what was written and delivers body chunks the way uWS does, as ArrayBuffers that
 * are detached once the callback returns (so code that keeps them without copying fails).
 * The real socket path is covered by test/e2e and test/fuzz.
 */
import type { UwsHttpResponse } from '../../src/ingress/uws';

export class FakeResponse implements UwsHttpResponse {
  status = '';
  readonly headers: Array<[string, string]> = [];
  body = '';
  ends = 0;
  closedConnection = false;
  #onData: ((chunk: ArrayBuffer, isLast: boolean) => void) | null = null;

  writeStatus(status: string): this {
    this.status = status;
    return this;
  }

  writeHeader(key: string, value: string): this {
    this.headers.push([key, value]);
    return this;
  }

  end(body?: string | Uint8Array, closeConnection?: boolean): this {
    this.ends++;
    this.body = typeof body === 'string' ? body : Buffer.from(body ?? new Uint8Array()).toString('utf8');
    this.closedConnection = closeConnection === true;
    return this;
  }

  /** Streamed answers (src/query/event-export.ts) are tested over real sockets; here a chunk just appends. */
  write(chunk: string | Uint8Array): boolean {
    this.body += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }

  onWritable(): this {
    return this;
  }

  close(): this {
    return this;
  }

  cork(callback: () => void): this {
    callback();
    return this;
  }

  onAborted(): this {
    return this;
  }

  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.#onData = handler;
    return this;
  }

  pause(): void {}
  getRemoteAddressAsText(): ArrayBuffer {
    return new TextEncoder().encode('127.0.0.1').buffer as ArrayBuffer;
  }

  resume(): void {}

  header(name: string): string | undefined {
    return this.headers.find(([key]) => key === name)?.[1];
  }

  /** Hands `bytes` to the body handler as uWS would, then detaches the buffer. */
  deliver(bytes: Uint8Array, isLast: boolean): void {
    if (this.#onData === null) throw new Error('no onData handler attached');
    const chunk = new ArrayBuffer(bytes.length);
    new Uint8Array(chunk).set(bytes);
    this.#onData(chunk, isLast);
    structuredClone(chunk, { transfer: [chunk] });
  }
}
