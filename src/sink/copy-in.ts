import type pg from 'pg';

/**
 * One `COPY … FROM STDIN` whose data travels with the statement: the Query message, one
 * CopyData holding the whole payload and CopyDone are corked into one socket write. The
 * usual client sequence (pg-copy-streams) sends the Query, waits a round trip for
 * CopyInResponse, then writes a CopyData header, the data and CopyDone separately; per
 * batch that is one more round trip, more writes and more wake-ups of the server process
 * and of ours (bench/native/copy-batches.ts compares the two as `autocommit` and
 * `pipelined`).
 *
 * Safe by the protocol: when the statement fails before copy-in starts (no such table,
 * no permission) the server answers ErrorResponse and ReadyForQuery and then ignores the
 * CopyData and CopyDone it finds, which PostgreSQL does on purpose for a frontend still
 * sending data after a failed COPY (postgres.c, the idle loop). A row that fails mid-COPY
 * ends the same way. The promise rejects with the server's error either way and the
 * connection stays usable (test/sink/copy-in.test.ts).
 *
 * The payload is written as it is, not copied (a copy per batch costs a fresh off-heap
 * buffer each time), so the promise settles only once the socket has also finished
 * writing it: after that the caller may reuse its buffer, even when the server answered
 * an early error while our bytes were still queued.
 */
export function copyIn(client: pg.Client, sql: string, payload: Uint8Array, trailingSql = ''): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // pg accepts any object with submit() (a "submittable") and routes the server's answers
    // to its handle* methods; the typings only know pg's own query shapes.
    const message = trailingSql === '' ? queryMessage(sql) : queryMessageWith(sql, trailingSql);
    client.query(new CopyInQuery(message, payload, resolve, reject) as unknown as pg.QueryConfig);
  });
}

const queryTag = 0x51; // 'Q'
const copyDataTag = 0x64; // 'd'
const copyDoneTag = 0x63; // 'c'
const copyDone = Buffer.from([copyDoneTag, 0, 0, 0, 4]);

/**
 * `trailingSql` (statements after the COPY, e.g. the batch's rollup upserts) goes in the
 * same Query message. PostgreSQL runs a multi-statement simple query as one implicit
 * transaction, reading the COPY's data when it reaches the COPY and going on to the next
 * statement after CopyDone: the statements commit or roll back together, still in one
 * round trip (docs/decisions/0021-rollups-in-the-write-transaction.md). A failure in any
 * of them rolls all of them back and skips the rest. Each statement ends in its own
 * CommandComplete, however many follow the COPY; the promise resolves with the COPY's row
 * count, read from the one tagged COPY, and only at ReadyForQuery, after the last.
 */

/**
 * Query messages by statement: the sink uses two statements (COPY into events or into its
 * staging table), so each is encoded once instead of once per batch.
 */
const queryMessages = new Map<string, Buffer>();

function queryMessage(sql: string): Buffer {
  let message = queryMessages.get(sql);
  if (message === undefined) {
    message = encodeQuery(sql);
    queryMessages.set(sql, message);
  }
  return message;
}

/** A Query message for `sql;trailingSql`, built for one call (the trailing text changes per batch). */
function queryMessageWith(sql: string, trailingSql: string): Buffer {
  return encodeQuery(`${sql};${trailingSql}`);
}

function encodeQuery(text: string): Buffer {
  const textBytes = Buffer.byteLength(text, 'utf8');
  const message = Buffer.allocUnsafe(1 + 4 + textBytes + 1);
  message[0] = queryTag;
  message.writeUInt32BE(4 + textBytes + 1, 1);
  message.write(text, 5, 'utf8');
  message[5 + textBytes] = 0;
  return message;
}

/** The 5-byte header of a CopyData of `payloadBytes`. */
function copyDataHeader(payloadBytes: number): Buffer {
  const header = Buffer.allocUnsafe(5);
  header[0] = copyDataTag;
  header.writeUInt32BE(4 + payloadBytes, 1);
  return header;
}

/** All three messages in one buffer, as they go on the wire (for tests and tools). */
export function copyInMessages(sql: string, payload: Uint8Array): Buffer {
  return Buffer.concat([queryMessage(sql), copyDataHeader(payload.length), payload, copyDone]);
}

interface PgSocket {
  cork(): void;
  uncork(): void;
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
}

type Answer = { readonly ok: true; readonly rows: number } | { readonly ok: false; readonly error: unknown };

class CopyInQuery {
  readonly #message: Buffer;
  readonly #payload: Uint8Array;
  readonly #resolve: (rows: number) => void;
  readonly #reject: (error: unknown) => void;
  #rowCount = 0;
  #answer: Answer | null = null;
  /** False only while the socket holds the payload; a query refused before submit() never wrote it. */
  #written = true;

  constructor(message: Buffer, payload: Uint8Array, resolve: (rows: number) => void, reject: (error: unknown) => void) {
    this.#message = message;
    this.#payload = payload;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: { readonly stream: PgSocket }): void {
    const socket = connection.stream;
    this.#written = false;
    socket.cork();
    socket.write(this.#message);
    socket.write(copyDataHeader(this.#payload.length));
    // Called once the payload has been handed to the kernel, or with an error if the
    // socket was destroyed first: either way Node holds no reference to it any more.
    socket.write(this.#payload, () => {
      this.#written = true;
      this.#settle();
    });
    socket.write(copyDone);
    socket.uncork();
  }

  /** Present so that pg's query_timeout can wrap it; called when the query ends. */
  callback(): void {}

  handleCopyInResponse(): void {
    // The data is already on its way.
  }

  handleCommandComplete(message: { text?: string }): void {
    const match = /^COPY (\d+)/.exec(message.text ?? '');
    if (match !== null) this.#rowCount = Number(match[1]);
  }

  handleReadyForQuery(): void {
    this.callback();
    this.#answer = { ok: true, rows: this.#rowCount };
    this.#settle();
  }

  handleError(error: unknown): void {
    // pg delivers no ReadyForQuery to a query after its error.
    this.callback();
    this.#answer = { ok: false, error };
    this.#settle();
  }

  #settle(): void {
    const answer = this.#answer;
    if (answer === null || !this.#written) return;
    if (answer.ok) this.#resolve(answer.rows);
    else this.#reject(answer.error);
  }
}
