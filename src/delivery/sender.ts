/**
 * One HTTP attempt: the Standard Webhooks body and headers, signed with every secret still
 * valid, POSTed through one undici Agent per delivery thread.
 *
 * undici's defaults are wrong for webhooks (unlimited connections per origin, 300 s
 * timeouts, unlimited response size), so every limit is set here from the settings:
 * connections per origin, connect timeout, headers and body timeouts, response bytes read.
 * Pipelining stays 1 (a slow request must not block the ones queued behind it on its
 * socket), HTTP/2 stays off, and undici never retries: a retried POST can duplicate a
 * delivery behind the engine's back, so retries belong to the schedule. Every connection
 * goes through the SSRF guard's lookup, so the address actually dialled is checked.
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Agent } from 'undici';
import { errorCodeOf } from '../sink/retry-policy';
import { destinationRefusedCode, guardedLookup, refusedAddressReason } from './destination-guard';

/** The attempt log keeps this much of a response body. */
export const storedResponseBytesMax = 4096;

export interface SenderSettings {
  readonly connectionsPerOrigin: number;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly responseBytesMax: number;
  readonly allowPrivateNetworks: boolean;
}

/** The columns of a claimed delivery that the body is made of (attributes as jsonb text). */
export interface EventFields {
  readonly eventId: string;
  readonly eventType: string;
  readonly source: string;
  readonly actorId: string | null;
  /** ISO-8601 with microseconds, as PostgreSQL formatted it. */
  readonly timestamp: string;
  readonly attributesJson: string;
}

export interface SendResult {
  /** The status received, or null when the request failed before one came. */
  readonly statusCode: number | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly retryAfter: string | null;
  readonly responseBody: string | null;
  readonly durationMs: number;
}

/**
 * The body, built by concatenation: the attributes are PostgreSQL's jsonb text, already
 * valid JSON, so nothing is parsed or re-serialised per delivery.
 */
export function webhookBody(event: EventFields): string {
  const data =
    '{"event_id":' + JSON.stringify(event.eventId) +
    ',"event_type":' + JSON.stringify(event.eventType) +
    ',"source":' + JSON.stringify(event.source) +
    ',"actor_id":' + (event.actorId === null ? 'null' : JSON.stringify(event.actorId)) +
    ',"timestamp":"' + event.timestamp +
    '","attributes":' + event.attributesJson + '}';
  return '{"type":' + JSON.stringify(event.eventType) + ',"timestamp":"' + event.timestamp + '","data":' + data + '}';
}

/** The HMAC key of a `whsec_<base64>` secret (a secret without the prefix is taken as base64 too). */
export function signingKeyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/**
 * The webhook-id header for an event id. Event ids may hold any Unicode text, but a header
 * value may not (undici refuses control characters and anything past U+00FF), so an id
 * that is not plain printable ASCII is sent percent-encoded (encodeURIComponent). Ids
 * sent as they are contain no '%' and encoded ones always do, so no two events share a
 * webhook-id. The body's data.event_id is always the id itself.
 */
export function webhookIdOf(eventId: string): string {
  return plainIdPattern.test(eventId) ? eventId : encodeURIComponent(eventId);
}

const plainIdPattern = /^[\x21-\x24\x26-\x7e]+$/;

/** `v1,<sig> v1,<sig>…`: one signature of "id.timestamp.body" per key, newest first. */
export function webhookSignature(keys: readonly Buffer[], eventId: string, timestampS: number, body: string): string {
  const signed = `${eventId}.${timestampS}.${body}`;
  let header = '';
  for (const key of keys) {
    if (header !== '') header += ' ';
    header += 'v1,' + createHmac('sha256', key).update(signed).digest('base64');
  }
  return header;
}

export class Sender {
  readonly #agent: Agent;
  readonly #settings: SenderSettings;

  constructor(settings: SenderSettings) {
    this.#settings = settings;
    this.#agent = new Agent({
      connections: settings.connectionsPerOrigin,
      pipelining: 1,
      connectTimeout: settings.connectTimeoutMs,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      allowH2: false,
      connect: { lookup: guardedLookup(settings.allowPrivateNetworks) },
    });
  }

  /**
   * Why this URL may not be dialled at all, or null. net.connect skips `lookup` for an IP
   * literal, so the guard's lookup cannot see those; they are checked here instead.
   */
  refusedLiteral(url: URL): string | null {
    if (this.#settings.allowPrivateNetworks) return null;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return isIP(host) === 0 ? null : refusedAddressReason(host);
  }

  async send(url: URL, keys: readonly Buffer[], event: EventFields, attempt: number): Promise<SendResult> {
    const startedAt = performance.now();
    const refused = this.refusedLiteral(url);
    if (refused !== null) return failure(destinationRefusedCode, `destination refused: ${refused}`, startedAt);
    const body = webhookBody(event);
    const webhookId = webhookIdOf(event.eventId);
    const timestampS = Math.floor(Date.now() / 1000);
    try {
      const response = await this.#agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Floodgate-Webhooks/1',
          'webhook-id': webhookId,
          'webhook-timestamp': String(timestampS),
          'webhook-signature': webhookSignature(keys, webhookId, timestampS, body),
          'webhook-attempt': String(attempt),
        },
        body,
      });
      const retryAfter = response.headers['retry-after'];
      const responseBody = await readCapped(response.body, this.#settings.responseBytesMax);
      return {
        statusCode: response.statusCode,
        errorCode: null,
        errorMessage: null,
        retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
        responseBody,
        durationMs: performance.now() - startedAt,
      };
    } catch (error) {
      return failure(errorCodeOf(error), error instanceof Error ? error.message : String(error), startedAt);
    }
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}

function failure(code: string | null, message: string, startedAt: number): SendResult {
  return { statusCode: null, errorCode: code, errorMessage: message, retryAfter: null, responseBody: null, durationMs: performance.now() - startedAt };
}

/**
 * Reads at most `bytesMax` of the body and destroys the rest: a body must always be
 * consumed or destroyed, or its connection stalls. Keeps the first storedResponseBytesMax.
 * A body cut short (or failing mid-way) does not change the outcome: the status decided it.
 */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, bytesMax: number): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let readBytes = 0;
  try {
    for await (const chunk of body) {
      readBytes += chunk.length;
      if (keptBytes < storedResponseBytesMax) {
        const part = chunk.subarray(0, storedResponseBytesMax - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (readBytes > bytesMax) {
        body.destroy();
        break;
      }
    }
  } catch {
    body.destroy();
  }
  // PostgreSQL text cannot hold NUL.
  return Buffer.concat(kept, keptBytes).toString('utf8').replaceAll('\u0000', '');
}
