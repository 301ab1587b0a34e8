import type pg from 'pg';
import { deliveriesChannel, loadSubscriptions, type SubscriptionRow } from '../delivery/delivery-schema';
import { subscriptionMatches } from '../delivery/subscription-match';
import { RingEvent } from '../ring/envelope-reader';
import type { BatchRow, RowEvent } from './batch-rows';
import { pairHashOf, spanEquals } from './rollup-counts';

/**
 * Fan-out in the write transaction: for the rows a transaction stores, the SQL that records
 * one delivery per (stored row, subscription covering it), sent in that same transaction
 * (src/delivery/delivery-schema.ts draws the lock protocol; docs/delivery.md argues it).
 *
 *   COPY events …  (or INSERT … RETURNING on the staging path)
 *   DO $$ … floodgate_fanout_check(<epoch>) … $$;   always: shared lock + "is my snapshot current?"
 *   INSERT INTO deliveries … unnest(ids, µs) × unnest(subs) …;  only when some stored row matched
 *   NOTIFY floodgate_deliveries, '<subscription ids>'
 *
 * The check and the NOTIFY are statements that return no rows, because on the COPY path
 * they ride in the COPY's own Query message (src/sink/copy-in.ts), which has no use for rows.
 *
 * Covered: a subscription in the snapshot covers a row when its types and sources match
 * and the row's received_at lies in [covered_from, covered_until) — open-ended while the
 * subscription is enabled; a disabled one covers only the rows received before it was
 * disabled (those still in flight when it changed), and none when covered_until is unset.
 * That is the window `floodgate deliveries verify` counts, so the two agree row for row.
 *
 * Per row the cost is one lookup of its (event_type, source) pair, read in place from the
 * ring bytes; the subscriptions a pair matches are worked out once per pair per snapshot.
 * With no subscription that can cover anything, rows are not looked at at all.
 */

/** Distinct (event_type, source) pairs remembered per snapshot; past this the cache starts over. */
export const pairsCachedMax = 4096;
/**
 * NOTIFY refuses payloads of 8000 bytes or more (and that error would fail the batch);
 * ids past this length are left out of the payload and found by the senders' poll instead.
 */
export const notifyPayloadBytesMax = 7000;

interface Target {
  readonly id: number;
  readonly fromUs: number;
  /** Infinity while the subscription is enabled. */
  readonly untilUs: number;
  /** The sqlFor call that last put this id in the NOTIFY payload. */
  notifiedCall: number;
}

const noTargets: readonly Target[] = Object.freeze([]);

interface SpanPair {
  readonly type: Buffer;
  readonly source: Buffer;
  readonly targets: readonly Target[];
}

export class FanOut {
  #epoch: number | null = null;
  #subscriptions: readonly { readonly row: SubscriptionRow; readonly target: Target }[] = [];
  #checkSql = '';
  /** Set when every live subscription matches every pair: then no row needs a lookup. */
  #everyPairTargets: readonly Target[] | null = null;
  /** Pairs read in place from ring bytes, by a hash of those bytes. */
  readonly #byHash = new Map<number, SpanPair[]>();
  /** Pairs of rows that arrive as text (staging and tests): type → source → targets. */
  readonly #byText = new Map<string, Map<string, readonly Target[]>>();
  #pairCount = 0;
  #call = 0;

  /** The epoch of the snapshot, or null before the first load. */
  get epoch(): number | null {
    return this.#epoch;
  }

  /**
   * Reads the subscriptions and their coverage windows in one read-only snapshot (so the
   * epoch names exactly these rows) and forgets every cached pair.
   */
  async load(client: pg.ClientBase): Promise<void> {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const { epoch, subscriptions } = await loadSubscriptions(client);
      const coverage = await client.query<{ id: string; from_us: string; until_us: string | null }>(coverageSql);
      await client.query('COMMIT');
      this.#install(epoch, subscriptions, new Map(coverage.rows.map((row) => [Number(row.id), row])));
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /**
   * The statements that fan out rows[indices], all of which the caller's transaction
   * stores: never '' (the check always runs), so a stale snapshot can never commit.
   *
   * Rows are grouped by the set of subscriptions that cover them (usually one set per
   * batch), and each group is one `unnest` of its ids and times crossed with its
   * subscription ids: the ids travel once whatever the fan-out, and an array literal costs
   * PostgreSQL a third of what the same rows cost as VALUES (3.6 against 10.2 µs per record
   * with the unique key then on the table; decision 0024).
   */
  sqlFor(rows: readonly BatchRow[], indices: Uint32Array): string {
    if (this.#epoch === null) throw new Error('FanOut: sqlFor before load');
    if (this.#subscriptions.length === 0) return this.#checkSql;
    const call = ++this.#call;
    const groups = new Map<readonly Target[] | string, { targets: readonly Target[]; ids: string; times: string }>();
    for (const index of indices) {
      const row = rows[index] as BatchRow;
      const targets = this.#everyPairTargets ?? this.#targetsOf(row.event);
      if (targets.length === 0) continue;
      const covering = coveringTargets(targets, row.receivedAtUs);
      if (covering.length === 0) continue;
      // The pair's own array is the key when it covers the row whole (the common case).
      const key = covering === targets ? targets : covering.map((target) => target.id).join(',');
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { targets: covering, ids: '', times: '' }));
      group.ids += `${group.ids === '' ? '' : ','}${arrayElementOf(row.event.eventId)}`;
      group.times += `${group.times === '' ? '' : ','}${row.event.occurredAtUs}`;
    }
    if (groups.size === 0) return this.#checkSql;
    let notified = '';
    const selects: string[] = [];
    for (const group of groups.values()) {
      selects.push(
        `SELECT s.id, v.e, timestamptz 'epoch' + v.us * interval '1 microsecond' ` +
          `FROM unnest('{${group.ids}}'::text[], '{${group.times}}'::bigint[]) AS v(e, us) ` +
          `CROSS JOIN unnest('{${group.targets.map((target) => target.id).join(',')}}'::bigint[]) AS s(id)`,
      );
      for (const target of group.targets) {
        if (target.notifiedCall === call) continue;
        target.notifiedCall = call;
        const next = notified === '' ? String(target.id) : `${notified},${target.id}`;
        if (next.length <= notifyPayloadBytesMax) notified = next;
      }
    }
    // µs since the epoch times one µs is exact (integer interval arithmetic below 2^53 µs);
    // a JS Date or float seconds would round occurred_at and miss the event it names.
    return `${this.#checkSql};INSERT INTO deliveries (subscription_id, event_id, occurred_at) ${selects.join(' UNION ALL ')};` +
      `NOTIFY ${deliveriesChannel}, '${notified}'`;
  }

  #install(epoch: number, subscriptions: readonly SubscriptionRow[], coverage: ReadonlyMap<number, { from_us: string; until_us: string | null }>): void {
    const live: { row: SubscriptionRow; target: Target }[] = [];
    for (const row of subscriptions) {
      const window = coverage.get(row.id);
      if (window === undefined) continue;
      if (!row.enabled && window.until_us === null) continue;
      const untilUs = row.enabled || window.until_us === null ? Number.POSITIVE_INFINITY : Number(window.until_us);
      // Matching ignores `enabled` here: the window above already decides what a disabled one covers.
      live.push({ row: row.enabled ? row : { ...row, enabled: true }, target: { id: row.id, fromUs: Number(window.from_us), untilUs, notifiedCall: 0 } });
    }
    this.#epoch = epoch;
    this.#subscriptions = live;
    const matchesAll = ({ row }: { row: SubscriptionRow }): boolean => row.sources === null && (row.eventTypes === null || row.eventTypes.includes('*'));
    this.#everyPairTargets = live.length > 0 && live.every(matchesAll) ? live.map(({ target }) => target) : null;
    this.#checkSql = `DO $fanout$BEGIN PERFORM floodgate_fanout_check(${epoch}); END$fanout$`;
    this.#forgetPairs();
  }

  #forgetPairs(): void {
    this.#byHash.clear();
    this.#byText.clear();
    this.#pairCount = 0;
  }

  #targetsOf(event: RowEvent): readonly Target[] {
    if (event instanceof RingEvent) return this.#targetsOfSpans(event);
    let bySource = this.#byText.get(event.eventType);
    const cached = bySource?.get(event.source);
    if (cached !== undefined) return cached;
    const targets = this.#matching(event.eventType, event.source);
    if (bySource === undefined) this.#byText.set(event.eventType, (bySource = new Map()));
    bySource.set(event.source, targets);
    return targets;
  }

  #targetsOfSpans(event: RingEvent): readonly Target[] {
    const bytes = event.bytes;
    const hash = pairHashOf(event);
    const candidates = this.#byHash.get(hash);
    if (candidates !== undefined) {
      for (const pair of candidates) {
        if (spanEquals(pair.type, bytes, event.typeStart, event.typeEnd) && spanEquals(pair.source, bytes, event.sourceStart, event.sourceEnd)) {
          return pair.targets;
        }
      }
    }
    const type = Buffer.from(bytes.subarray(event.typeStart, event.typeEnd));
    const source = Buffer.from(bytes.subarray(event.sourceStart, event.sourceEnd));
    const pair: SpanPair = { type, source, targets: this.#matching(type.toString('utf8'), source.toString('utf8')) };
    const list = this.#byHash.get(hash);
    if (list === undefined) this.#byHash.set(hash, [pair]);
    else list.push(pair);
    return pair.targets;
  }

  /** The targets a new pair matches; counts the pair against the cache's bound first. */
  #matching(eventType: string, source: string): readonly Target[] {
    if (this.#pairCount >= pairsCachedMax) this.#forgetPairs();
    this.#pairCount += 1;
    const targets = this.#subscriptions.filter(({ row }) => subscriptionMatches(row, eventType, source)).map(({ target }) => target);
    return targets.length === 0 ? noTargets : targets;
  }
}

/** Each subscription's coverage window in µs since the epoch (numeric extract: exact). */
const coverageSql =
  'SELECT id, (extract(epoch FROM covered_from) * 1000000)::bigint AS from_us, ' +
  '(extract(epoch FROM covered_until) * 1000000)::bigint AS until_us FROM subscriptions WHERE deleted_at IS NULL';

/** The targets whose window holds `receivedAtUs`: the same array when all of them do. */
function coveringTargets(targets: readonly Target[], receivedAtUs: number): readonly Target[] {
  for (const target of targets) {
    if (receivedAtUs < target.fromUs || receivedAtUs >= target.untilUs) {
      return targets.filter((candidate) => receivedAtUs >= candidate.fromUs && receivedAtUs < candidate.untilUs);
    }
  }
  return targets;
}

const needsEscaping = /["'\\]/;

/**
 * An event id as a quoted element of a text[] literal inside an SQL string (the COPY path's
 * trailing SQL cannot carry parameters): backslash before `"` and `\` for the array, `'`
 * doubled for the string. A stored id never holds NUL (PostgreSQL text cannot), so the
 * message's text cannot end early.
 */
function arrayElementOf(text: string): string {
  if (!needsEscaping.test(text)) return `"${text}"`;
  return `"${text.replace(/["\\]/g, '\\$&').replaceAll("'", "''")}"`;
}
