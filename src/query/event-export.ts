/**
 * GET /v1/events with `Accept: application/x-ndjson`: every matching row, one JSON object
 * per line, in a chunked answer, in constant memory.
 *
 *   PostgreSQL ── page k+1 (one statement, about 1 MiB as one text) ─┐
 *                                                                    │ fetched while
 *   client ◄── uWS buffer ◄── write(page k) ◄── waits for onWritable ┘ page k is written
 *
 * At most three pages are held whatever the row count: the one in uWS's buffer, the one
 * being written, the one being fetched. A page is read only once the one before it has
 * been handed to uWS, and a write that leaves bytes in uWS's buffer waits for the client
 * (onWritable) before anything more is written, so a slow client slows the reads instead
 * of filling memory. Every page is its own statement under statement_timeout, on one
 * connection. Rows are JSON text made by PostgreSQL (./event-cursor.ts): one string per
 * page reaches JS, never an object per row.
 *
 * The status line goes out with the first page: an error before it answers with a status
 * as any read does; an error after it can only end the stream, with a last line
 * `{"request_id", "error": {…}, "next_cursor"}` whose cursor resumes after the last row
 * written.
 */
import type pg from 'pg';
import { writeCorsHeaders } from '../ingress/cors';
import { echoableRequestId } from '../ingress/request-id';
import type { UwsHttpResponse } from '../ingress/uws';
import type { Logger } from '../log';
import { encodeEventCursor, nextKeyOf, pageStatement, type EventKey, type EventQuery, type PageRow } from './event-cursor';
import type { ReadDatabase } from './read-database';
import { problemOf, replyReadError } from './read-route';

/**
 * Pages are sized by bytes, not rows: attributes reach 32 KiB, so a fixed row count
 * could make one page 160 MiB. The first page reads firstPageRows; each next page reads
 * as many rows as the last page's bytes per row say fit in pageBytesTarget.
 */
const pageBytesTarget = 1024 * 1024;
const firstPageRows = 1000;
const pageRowsMin = 100;
const pageRowsMax = 10_000;
/**
 * While the client is behind, bytes go to uWS in pieces this small: uWS drains its buffer
 * only when something is written, and each piece it cannot send joins the buffer, so a
 * small piece keeps the buffer from growing by more than the socket took.
 */
const pieceBytesWhileBehind = 4096;
/** A client that takes nothing for this long is disconnected: its export holds a connection. */
const stalledMsMax = 60_000;
const ndjsonTypes = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl']);

/** True when the Accept header lists an NDJSON type with a quality above zero. */
export function acceptsNdjson(accept: string): boolean {
  for (const range of accept.toLowerCase().split(',')) {
    const [type = '', ...parameters] = range.split(';').map((part) => part.trim());
    if (!ndjsonTypes.has(type)) continue;
    const quality = parameters.find((parameter) => parameter.startsWith('q='));
    if (quality === undefined || Number(quality.slice(2)) > 0) return true;
  }
  return false;
}

/**
 * A chunked answer that respects backpressure: write() resolves once its bytes are all
 * handed to uWS, waiting for onWritable whenever a write left bytes in uWS's buffer.
 */
export class StreamedResponse {
  readonly #res: UwsHttpResponse;
  #aborted = false;
  #started = false;
  /** The last write left bytes in uWS's buffer. */
  #behind = false;
  /** onWritable fired since the last write: the socket took data, so write again. */
  #writable = false;
  #wake: (() => void) | null = null;

  /** Call inside the route handler's own tick: uWS wants onAborted set before it returns. */
  constructor(res: UwsHttpResponse) {
    this.#res = res;
    res.onAborted(() => {
      this.#aborted = true;
      this.#wakeUp();
    });
    res.onWritable(() => {
      this.#writable = true;
      this.#wakeUp();
      return true;
    });
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get started(): boolean {
    return this.#started;
  }

  /** The status line and headers; the first write ends the header block (chunked). */
  start(requestId: string): void {
    this.#started = true;
    const res = this.#res;
    res.cork(() => {
      res.writeStatus('200 OK');
      res.writeHeader('content-type', 'application/x-ndjson');
      res.writeHeader('x-request-id', echoableRequestId(requestId));
      res.writeHeader('x-content-type-options', 'nosniff');
      res.writeHeader('cache-control', 'no-store');
      if (res.corsAllowOrigin !== undefined) writeCorsHeaders(res, res.corsAllowOrigin);
    });
  }

  /** Resolves true once every byte is with uWS, false when the client went away first. */
  async write(bytes: Uint8Array): Promise<boolean> {
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#behind && !this.#writable) await this.#writableAgain();
      if (this.#aborted) return false;
      const end = this.#behind ? Math.min(bytes.length, offset + pieceBytesWhileBehind) : bytes.length;
      const piece = bytes.subarray(offset, end);
      let taken = false;
      this.#writable = false;
      this.#res.cork(() => (taken = this.#res.write(piece)));
      this.#behind = !taken;
      offset = end;
    }
    return !this.#aborted;
  }

  /** Ends the answer (uWS sends what its buffer still holds, then the last chunk). */
  end(): void {
    if (!this.#aborted) this.#res.cork(() => this.#res.end());
  }

  /** Resolves on onWritable or an abort; closes the connection after stalledMsMax. */
  #writableAgain(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#aborted = true;
        this.#res.close();
        this.#wakeUp();
      }, stalledMsMax);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

export interface ExportContext {
  readonly db: ReadDatabase;
  readonly log: Logger;
  readonly stream: StreamedResponse;
  readonly res: UwsHttpResponse;
  readonly requestId: string;
  readonly query: EventQuery;
  readonly pattern: string;
}

interface ExportProgress {
  rows: number;
  pages: number;
  /** Where the rows not yet written start: the cursor a client resumes with. */
  resumeAfter: EventKey | null;
}

/** Streams the export; never throws (failures end the answer as described above). */
export async function streamEvents(context: ExportContext): Promise<void> {
  const { stream, log, requestId } = context;
  const startedAtMs = performance.now();
  const progress: ExportProgress = { rows: 0, pages: 0, resumeAfter: context.query.after };
  let outcome = 'complete';
  try {
    await context.db.withConnection((client) => copyPages(client, context, progress));
    if (stream.aborted) outcome = 'client went away';
    else stream.end();
  } catch (error) {
    outcome = problemOf(error).code;
    if (stream.aborted) outcome = 'client went away';
    else if (!stream.started) replyReadError(context.res, requestId, error, log, context.pattern);
    else await endWithError(context, progress, error);
  }
  const elapsedMs = Math.round(performance.now() - startedAtMs);
  log.info({ requestId, route: context.pattern, rows: progress.rows, pages: progress.pages, elapsedMs, outcome }, 'event export ended');
}

interface FetchedPage {
  readonly bytes: Buffer;
  readonly rows: number;
  /** Where the next page starts; null when this one is the last. */
  readonly nextKey: EventKey | null;
}

/** The page loop: page k is written while page k+1 is read. */
async function copyPages(client: pg.PoolClient, context: ExportContext, progress: ExportProgress): Promise<void> {
  const { stream, query } = context;
  let page = await fetchPage(client, query, progress.resumeAfter, firstPageRows);
  if (stream.aborted) return;
  stream.start(context.requestId);
  let next: Promise<FetchedPage> | null = null;
  try {
    for (;;) {
      next = page.nextKey === null ? null : fetchPage(client, query, page.nextKey, nextPageRows(page));
      // A failure is seen when it is awaited; until then it must not count as unhandled.
      next?.catch(() => undefined);
      if (!(await stream.write(page.bytes))) return;
      progress.rows += page.rows;
      progress.pages++;
      progress.resumeAfter = page.nextKey;
      if (next === null) return;
      page = await next;
      next = null;
    }
  } finally {
    // The connection goes back to the pool only once no statement of ours runs on it.
    if (next !== null) await next.catch(() => undefined);
  }
}

async function fetchPage(client: pg.PoolClient, query: EventQuery, after: EventKey | null, pageRows: number): Promise<FetchedPage> {
  const statement = pageStatement({ ...query, after }, pageRows, '\n');
  const result = await client.query<PageRow>(statement.text, statement.values as unknown[]);
  const row = result.rows[0] as PageRow;
  // Every line ends with a newline, the page's last one too.
  const bytes = row.body === null ? Buffer.alloc(0) : Buffer.from(`${row.body}\n`, 'utf8');
  return { bytes, rows: Math.min(row.row_count, pageRows), nextKey: nextKeyOf(row, pageRows) };
}

function nextPageRows(page: FetchedPage): number {
  const rows = Math.floor((page.rows * pageBytesTarget) / Math.max(1, page.bytes.length));
  return Math.min(pageRowsMax, Math.max(pageRowsMin, rows));
}

/** The status is sent: the error becomes the stream's last line. */
async function endWithError(context: ExportContext, progress: ExportProgress, error: unknown): Promise<void> {
  const problem = problemOf(error);
  context.log.warn({ err: error, requestId: context.requestId, route: context.pattern, rows: progress.rows }, 'event export failed after it started');
  const nextCursor = progress.resumeAfter === null ? null : encodeEventCursor(context.query, progress.resumeAfter);
  const line = JSON.stringify({ request_id: echoableRequestId(context.requestId), error: problem, next_cursor: nextCursor });
  if (await context.stream.write(Buffer.from(`${line}\n`, 'utf8'))) context.stream.end();
}
