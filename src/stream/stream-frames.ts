/**
 * What a WebSocket stream's frames carry, in both directions (docs/stream.md, "Frames").
 *
 * In: one batch per frame, in the formats HTTP bulk takes, each naming its `batch_id`:
 *
 *   text    {"batch_id": "b1", "events": [...]}          JSON (attribute spans kept, as HTTP)
 *   text    {"batch_id": "b1"}\n{event}\n{event}…        NDJSON: the first line names the batch
 *   binary  msgpack map {batch_id, events}
 *
 * Out: one text frame per batch, an ack (the batch was processed: stored, duplicate or
 * refused event by event, as HTTP bulk answers) or a nack (nothing of it was taken; with
 * `retry_after_ms` it is to be resent as is, without it never).
 *
 * The decoding itself is src/decode's, unchanged: this module only finds the batch's name
 * and which of the three formats the frame is in.
 */
import { decodeBulkBody, type BulkLimits, type RawAttributes } from '../decode/decode-body';
import type { BodyFormat } from '../decode/body-format';
import { isPlainObject } from '../decode/client-input';
import { scanBody } from '../decode/event-count-scanner';
import type { ErrorCode, ErrorInfo, EventError } from '../errors';
import { isValidRequestId } from '../ingress/request-id';
import { v1Body, type IngestResult } from '../ingress/responses';

export type BatchFrame =
  | {
      readonly ok: true;
      readonly batchId: string;
      readonly format: BodyFormat;
      readonly items: unknown[];
      readonly lineErrors: readonly EventError[];
      readonly rawAttributes: RawAttributes | null;
    }
  | { readonly ok: false; readonly batchId: string | null; readonly error: ErrorInfo };

const newline = 0x0a;
/** An NDJSON frame's first line is `{"batch_id": "…"}`: short, so a longer first line is not one. */
const headerLineBytesMax = 512;

/** Decodes one frame; `bytes` must outlive the call (uWS neuters its ArrayBuffer on return). */
export function decodeBatchFrame(bytes: Buffer, isBinary: boolean, limits: BulkLimits): BatchFrame {
  if (isBinary) return decoded('msgpack', bytes, limits);
  const header = ndjsonHeaderOf(bytes);
  if (header === null) return decoded('json', bytes, limits);
  if (typeof header.batchId !== 'string' || !isValidRequestId(header.batchId)) {
    return { ok: false, batchId: null, error: { code: 'ERR_INGEST_BAD_SHAPE', message: '"batch_id" on the first line must be 1-128 printable ASCII characters' } };
  }
  // An NDJSON body names no batch itself: the header line does.
  return { ...decoded('ndjson', bytes.subarray(header.bodyStart), limits), batchId: header.batchId };
}

/** Where a batch's id is written by JSON serialisers: first, or close to it. */
const batchIdSearchBytes = 1024;
const batchIdPattern = /"batch_id"\s*:\s*"([\x20-\x21\x23-\x5b\x5d-\x7e]{1,128})"/;

/**
 * The `batch_id` of a JSON frame the decoder refused (too many events, an unknown key, no
 * events), found by its text near the start, so the nack names the batch and its client
 * can fail that batch's events instead of waiting for an answer that never comes.
 */
function batchIdNear(bytes: Buffer): string | null {
  const match = batchIdPattern.exec(bytes.toString('latin1', 0, Math.min(bytes.length, batchIdSearchBytes)));
  return match === null ? null : (match[1] as string);
}

function decoded(format: BodyFormat, bytes: Buffer, limits: BulkLimits): BatchFrame {
  const body = decodeBulkBody(format, bytes, limits, scanBody(format, bytes), 'batch_id');
  if (!body.ok) return { ok: false, batchId: format === 'json' ? batchIdNear(bytes) : null, error: body.error };
  return { ok: true, batchId: body.requestId ?? '', format, items: body.items, lineErrors: body.lineErrors, rawAttributes: body.rawAttributes };
}

/**
 * A text frame is NDJSON when its first line is a whole JSON object holding `batch_id`
 * and nothing else, with more lines after it; otherwise it is one JSON document (which
 * may itself span lines).
 */
function ndjsonHeaderOf(bytes: Buffer): { batchId: unknown; bodyStart: number } | null {
  const end = bytes.indexOf(newline);
  if (end === -1 || end > headerLineBytesMax) return null;
  let head: unknown;
  try {
    head = JSON.parse(bytes.toString('utf8', 0, end));
  } catch {
    return null;
  }
  if (!isPlainObject(head)) return null;
  const keys = Object.keys(head);
  if (keys.length !== 1 || keys[0] !== 'batch_id') return null;
  return { batchId: head.batch_id, bodyStart: end + 1 };
}

/** The ack of a processed batch: the v1 bulk answer's counts and errors, under the batch's name. */
export function ackFrame(batchId: string, result: IngestResult): string {
  const { request_id: _requestId, ...body } = v1Body(result, false);
  return JSON.stringify({ type: 'ack', batch_id: batchId, ...body });
}

/** A batch not taken; `retryAfterMs` null means resending it cannot help. */
export function nackFrame(batchId: string | null, code: ErrorCode, message: string, retryAfterMs: number | null): string {
  const frame: Record<string, unknown> = { type: 'nack', batch_id: batchId, error: { code, message } };
  if (retryAfterMs !== null) frame.retry_after_ms = retryAfterMs;
  return JSON.stringify(frame);
}
