/**
 * Buckets in a time zone: where each minute, hour or day of a zone's wall clock starts,
 * across its clock changes, for GET /v1/analytics/counts (./counts-route.ts). Offsets come
 * from Node's ICU through Intl.DateTimeFormat, so the zones are the ones Node knows.
 */
import assert from 'node:assert/strict';

const hourMs = 3_600_000;
const dayMs = 86_400_000;

/**
 * The bucket starts covering [fromMs, toMs): from the start of the bucket holding fromMs
 * up to (not including) `endMs`, the first start at or after toMs.
 *
 * A bucket starts wherever the zone's wall clock reads a whole minute, hour or midnight,
 * and where a clock change moves the wall clock into another bucket without landing on a
 * boundary (a DST jump at midnight starts the day at the jump). So a local day is 23 or 25
 * hours on DST days, and the hour the clocks go back happens twice, as two buckets.
 */
export function bucketsOf(zone: Zone, stepMs: number, fromMs: number, toMs: number): { starts: number[]; endMs: number } {
  // Wide enough to hold the start of fromMs's bucket and the end of toMs's: a bucket is at
  // most a step and a clock change long.
  const marginMs = 2 * stepMs + hourMs;
  const all = startsBetween(zone.segments(fromMs - marginMs, toMs + marginMs), stepMs, fromMs - marginMs, toMs + marginMs);
  let first = 0;
  while (first + 1 < all.length && (all[first + 1] as number) <= fromMs) first++;
  let end = first;
  while (end < all.length && (all[end] as number) < toMs) end++;
  const endMs = all[end];
  assert.ok(all[first] !== undefined && (all[first] as number) <= fromMs && endMs !== undefined, 'bucketsOf: the margin holds no bucket boundary');
  return { starts: all.slice(first, end), endMs };
}

/** Offsets of the zone (local minus UTC, ms), each holding from startMs to the next one's start. */
interface OffsetSegment {
  readonly startMs: number;
  readonly offsetMs: number;
}

function startsBetween(segments: readonly OffsetSegment[], stepMs: number, loMs: number, hiMs: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s] as OffsetSegment;
    const fromMs = Math.max(segment.startMs, loMs);
    const toMs = Math.min(segments[s + 1]?.startMs ?? Infinity, hiMs);
    if (fromMs >= toMs) continue;
    const offset = segment.offsetMs;
    const previous = segments[s - 1];
    if (previous !== undefined && fromMs === segment.startMs) {
      const wallBefore = Math.floor((fromMs - 1 + previous.offsetMs) / stepMs);
      const wallAfter = Math.floor((fromMs + offset) / stepMs);
      if (wallBefore !== wallAfter && mod(fromMs + offset, stepMs) !== 0) starts.push(fromMs);
    }
    for (let startMs = Math.ceil((fromMs + offset) / stepMs) * stepMs - offset; startMs < toMs; startMs += stepMs) starts.push(startMs);
  }
  return starts;
}

export function mod(value: number, divisor: number): number {
  return ((value % divisor) + divisor) % divisor;
}

/**
 * Clock changes are found by sampling the offset this far apart and bisecting where two
 * samples differ; it assumes a zone changes its offset at most once in that time, which
 * holds for every zone since 1970 (DST changes are months apart).
 */
const offsetSampleMs = 7 * dayMs;
/** Zones kept with their formatter; only valid names are kept, so the map stays small. */
const zonesMax = 1000;

/** An IANA time zone as Node's ICU knows it, with what bucketing needs of it. */
export class Zone {
  static readonly utc = new Zone('UTC', null);
  static readonly #known = new Map<string, Zone>();
  readonly name: string;
  readonly #format: Intl.DateTimeFormat | null;

  private constructor(name: string, format: Intl.DateTimeFormat | null) {
    this.name = name;
    this.#format = format;
  }

  /** The zone of that name (case-insensitive, as ICU reads it), or null when there is none. */
  static named(name: string): Zone | null {
    const known = Zone.#known.get(name);
    if (known !== undefined) return known;
    if (!/^[A-Za-z][A-Za-z0-9_+/-]*$/.test(name)) return null;
    let format: Intl.DateTimeFormat;
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch {
      return null;
    }
    const canonical = format.resolvedOptions().timeZone;
    const zone = canonical === 'UTC' ? Zone.utc : new Zone(canonical, format);
    if (Zone.#known.size >= zonesMax) Zone.#known.clear();
    Zone.#known.set(name, zone);
    return zone;
  }

  get isUtc(): boolean {
    return this.#format === null;
  }

  /** Local wall-clock time minus UTC at that instant, in ms (e.g. -18,000,000 for UTC-5). */
  offsetMs(instantMs: number): number {
    if (this.#format === null) return 0;
    // en-US with h23 formats as "12/6/2026, 22:06:01".
    const match = /^(\d+)\/(\d+)\/(\d+), (\d+):(\d+):(\d+)$/.exec(this.#format.format(instantMs));
    if (match === null) throw new Error(`unexpected ${this.name} wall-clock text for ${instantMs}`);
    const [month, day, year, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
    const wallMs = Date.UTC(year, month - 1, day, hour, minute, second);
    return wallMs - (instantMs - mod(instantMs, 1000));
  }

  /** The offsets holding over [fromMs, toMs]; the first segment starts at -Infinity. */
  segments(fromMs: number, toMs: number): OffsetSegment[] {
    let sampleMs = fromMs - mod(fromMs, 1000);
    let offset = this.offsetMs(sampleMs);
    const segments: OffsetSegment[] = [{ startMs: -Infinity, offsetMs: offset }];
    if (this.#format === null) return segments;
    while (sampleMs < toMs) {
      const nextMs = Math.min(sampleMs + offsetSampleMs, toMs - mod(toMs, 1000) + 1000);
      const nextOffset = this.offsetMs(nextMs);
      if (nextOffset !== offset) segments.push({ startMs: this.#changeBetween(sampleMs, nextMs, offset), offsetMs: nextOffset });
      [sampleMs, offset] = [nextMs, nextOffset];
    }
    return segments;
  }

  /** The whole second in (loMs, hiMs] where the offset stops being `offsetMs` (bisection). */
  #changeBetween(loMs: number, hiMs: number, offsetMs: number): number {
    let [lo, hi] = [loMs, hiMs];
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (this.offsetMs(mid) === offsetMs) lo = mid;
      else hi = mid;
    }
    return hi;
  }
}
