/**
 * Maps a request's Content-Type header to the body decoder that handles it.
 *
 * Parsing is deliberately small: the media type is everything before the first `;`,
 * compared case-insensitively after trimming, and the only parameter looked at is
 * `charset`, because JSON and NDJSON bodies are decoded as UTF-8 and any other declared
 * charset would be silently misread.
 */
export type BodyFormat = 'json' | 'ndjson' | 'msgpack';

const formatByMediaType: ReadonlyMap<string, BodyFormat> = new Map<string, BodyFormat>([
  ['application/json', 'json'],
  ['text/json', 'json'],
  ['application/x-ndjson', 'ndjson'],
  ['application/ndjson', 'ndjson'],
  ['application/jsonl', 'ndjson'],
  ['application/x-jsonlines', 'ndjson'],
  ['application/msgpack', 'msgpack'],
  ['application/x-msgpack', 'msgpack'],
  ['application/vnd.msgpack', 'msgpack'],
]);

/**
 * Returns the body format named by a Content-Type header, or null when Floodgate cannot
 * decode it (the caller answers 415 ERR_INGEST_UNSUPPORTED_MEDIA_TYPE).
 *
 * A missing or empty header means JSON, so `curl --data-binary @file` with no `-H` works.
 * Note that `curl -d` without `-H` sends `application/x-www-form-urlencoded`, which is
 * refused: a form body is not JSON and guessing would hide client bugs.
 */
export function bodyFormatOf(contentType: string | undefined): BodyFormat | null {
  if (contentType === undefined) return 'json';
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  if (mediaType === '') return semicolon === -1 ? 'json' : null;
  const format = formatByMediaType.get(mediaType) ?? (isStructuredJson(mediaType) ? 'json' : null);
  if (format === null || format === 'msgpack' || semicolon === -1) return format;
  return charsetIsUtf8(contentType.slice(semicolon + 1)) ? format : null;
}

/** `application/vnd.api+json` and friends: a JSON document with a vendor-specific name. */
function isStructuredJson(mediaType: string): boolean {
  const prefix = 'application/';
  return (
    mediaType.startsWith(prefix) &&
    mediaType.endsWith('+json') &&
    mediaType.length > prefix.length + '+json'.length &&
    mediaType.indexOf('/', prefix.length) === -1
  );
}

/**
 * True when the parameter list declares no charset or declares UTF-8. Parameters are
 * `name=value` pairs separated by `;`; the value may be quoted.
 */
function charsetIsUtf8(parameters: string): boolean {
  for (const parameter of parameters.split(';')) {
    const equals = parameter.indexOf('=');
    if (equals === -1) continue;
    if (parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue;
    let value = parameter.slice(equals + 1).trim().toLowerCase();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value !== 'utf-8' && value !== 'utf8') return false;
  }
  return true;
}
