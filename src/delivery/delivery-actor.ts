/**
 * One delivery thread's scheduler: it owns the subscriptions with id % actorCount ===
 * actorIndex, claims their due deliveries, sends them, and writes outcomes back in batches.
 *
 *   wake (NOTIFY ids, 1 s poll, a retry time, a send ending, a token or a breaker timer)
 *     → pump: round-robin over owned, enabled, maybe-ready subscriptions
 *         allowance = min(free in-flight slots, endpoint breaker / slow start, tokens, 200)
 *         claim live (lane 0); if live ran dry, claim replay (lane 1, ≤ max(1, cap / 4))
 *         a full claim keeps the subscription ready (moved to the back), a short one drops it
 *     → each row: send (sender.ts) → verdict (outcome-rules.ts) → breaker, pause, retry time
 *     → OutcomeWriter: one statement per ≤ 5 ms or 200 outcomes (claims.ts)
 *
 * Isolation comes from the allowance: a dead endpoint holds at most its own subscription's
 * in-flight slots, and a claim never waits for a send, so another subscription's rows are
 * claimed and sent on the next pass. Every await in the pump is a short database statement.
 * When PostgreSQL is down, claims back off and outcomes stay in memory (bounded) until
 * written; claiming resumes only after the buffered outcomes are written, so a row whose
 * lease ran out meanwhile is not claimed again before its result is recorded.
 */
import { randomInt } from 'node:crypto';
import type pg from 'pg';
import type { Histogram } from 'hdr-histogram-js';
import type { Logger } from '../log';
import { createHistogram, encodeHistogram, trackable } from '../metrics/hdr';
import { errorCodeOf } from '../sink/retry-policy';
import { disableSubscription } from './subscription-store';
import { claimDeliveries, writeOutcomes, type ClaimedDelivery, type OutcomeRecord } from './claims';
import { defaultRetryMaxAgeS, defaultRetryScheduleS, liveLane, replayLane, type DeliveryLane, type SubscriptionRow } from './delivery-schema';
import { destinationRefusedCode } from './destination-guard';
import { EndpointBreaker, TokenBucket, type BreakerSettings, type BreakerState } from './endpoint-health';
import {
  attemptOutcomes, defaultThrottleMs, errorClasses, missingEventVerdict, retryAfterMs, retryDelayMs, verdictOfError, verdictOfStatus,
  type Verdict,
} from './outcome-rules';
import { signingKeyOf, type Sender, type SendResult } from './sender';
import { deferralReasons, type DeliveryStatsMessage, type LiveStateEntry } from './delivery-pool';

export interface DeliveryActorSettings {
  readonly actorIndex: number;
  readonly actorCount: number;
  readonly leaseMs: number;
  readonly retryAfterMaxMs: number;
  readonly breaker?: BreakerSettings;
}

/** Most rows one claim statement takes. */
const claimRowsMax = 200;
/** Outcomes written per statement, and how long the first waits for company. */
const outcomeBatchRowsMax = 200;
const outcomeBatchWaitMs = 5;
/** Outcomes kept in memory while PostgreSQL is unreachable; claiming stops at this many. */
const outcomesBufferedMax = 20_000;
const databaseBackoffMsMin = 100;
const databaseBackoffMsMax = 2000;
const breakerCodes: Record<BreakerState, 0 | 1 | 2> = { closed: 0, open: 1, 'half-open': 2 };

/** One claimed delivery between its claim and its outcome. */
interface Flight {
  readonly state: SubscriptionState;
  readonly row: ClaimedDelivery;
  readonly lane: DeliveryLane;
  readonly token: string;
  /** The half-open breaker's one probe: its result closes or reopens the breaker. */
  readonly isProbe: boolean;
  readonly breaker: EndpointBreaker;
  readonly attemptedAtMs: number;
}

interface SubscriptionState {
  row: SubscriptionRow;
  url: URL | null;
  origin: string;
  keys: readonly Buffer[];
  validKeys: readonly Buffer[];
  validKeysUntilMs: number;
  inFlight: number;
  replayInFlight: number;
  bucket: TokenBucket | null;
  pausedUntilMs: number;
  /** The earliest retry this thread scheduled for it (ms), or Infinity. */
  wakeAtMs: number;
  /** The replay lane may have due rows (set by the poll, cleared by a short replay claim). */
  replayMaybe: boolean;
  readonly outcomeCounts: Float64Array;
  readonly classCounts: Float64Array;
  /** The second in which each deferral reason was last counted. */
  readonly deferredSecond: Float64Array;
}

export class DeliveryActor {
  readonly #pool: pg.Pool;
  readonly #sender: Sender;
  readonly #settings: DeliveryActorSettings;
  readonly #log: Logger;
  readonly #outcomes: OutcomeWriter;
  readonly #states = new Map<number, SubscriptionState>();
  readonly #breakers = new Map<string, EndpointBreaker>();
  /** Subscriptions that may have due rows, in round-robin order (a Set keeps insertion order). */
  readonly #ready = new Set<number>();
  #retired: SubscriptionState[] = [];
  #pumping = false;
  #pumpAgain = false;
  #timer: NodeJS.Timeout | null = null;
  #timerAtMs = Number.POSITIVE_INFINITY;
  #claimBackoffMs = 0;
  #claimsBlockedUntilMs = 0;
  #stopping = false;
  #abandoned = false;
  #inFlightTotal = 0;
  #onIdle: (() => void) | null = null;
  // Telemetry since the last stats message.
  #reclaimed = 0;
  readonly #deferrals = new Float64Array(deferralReasons.length);
  readonly #latencyUs: Histogram = createHistogram();
  #latencySumUs = 0;
  #ownedChanged = true;

  constructor(deps: { pool: pg.Pool; sender: Sender; settings: DeliveryActorSettings; log: Logger }) {
    this.#pool = deps.pool;
    this.#sender = deps.sender;
    this.#settings = deps.settings;
    this.#log = deps.log;
    this.#outcomes = new OutcomeWriter(deps.pool, deps.log, () => this.kick());
  }

  owns(subscriptionId: number): boolean {
    return subscriptionId % this.#settings.actorCount === this.#settings.actorIndex;
  }

  /** Replaces the subscription snapshot; counters, buckets and in-flight counts carry over. */
  setSubscriptions(rows: readonly SubscriptionRow[]): void {
    const nowMs = Date.now();
    const seen = new Set<number>();
    for (const row of rows) {
      if (!this.owns(row.id)) continue;
      seen.add(row.id);
      const previous = this.#states.get(row.id);
      // Sends in flight hold the state object, so an existing one is updated in place:
      // replacing it would lose their in-flight slots when they finish.
      const state = previous ?? stateOf(row, nowMs);
      state.row = row;
      if (previous !== undefined) Object.assign(state, identityOf(row, nowMs));
      this.#states.set(row.id, state);
      this.#updateBucket(state, nowMs);
      if (!this.#breakers.has(state.origin)) this.#breakers.set(state.origin, new EndpointBreaker(this.#settings.breaker));
      if (previous === undefined) this.#ownedChanged = true;
    }
    for (const [id, state] of this.#states) {
      if (seen.has(id)) continue;
      this.#states.delete(id);
      this.#ready.delete(id);
      this.#retired.push(state);
      this.#ownedChanged = true;
    }
    const origins = new Set([...this.#states.values()].map((state) => state.origin));
    for (const origin of this.#breakers.keys()) if (!origins.has(origin)) this.#breakers.delete(origin);
    this.wakeAll();
  }

  /** NOTIFY named these subscriptions: they may have new due rows (live ones: fan-out sends it). */
  wake(ids: readonly number[]): void {
    for (const id of ids) {
      const state = this.#states.get(id);
      if (state === undefined || !state.row.enabled) continue;
      this.#ready.add(id);
    }
    this.kick();
  }

  /** The poll backstop: every owned, enabled subscription may have due rows. */
  wakeAll(): void {
    for (const [id, state] of this.#states) {
      if (!state.row.enabled) continue;
      state.replayMaybe = true;
      this.#ready.add(id);
    }
    this.kick();
  }

  kick(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    // A throw here is a bug of ours; logged, not left to kill the thread as an unhandled rejection.
    this.#pump().catch((error: unknown) => this.#log.error({ err: error }, 'delivery scheduler pass failed'));
  }

  /** Stops claiming, waits up to `waitMs` for sends in flight, then writes every outcome it can. */
  async stop(waitMs: number): Promise<void> {
    this.#stopping = true;
    this.#clearTimer();
    if (this.#inFlightTotal > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#onIdle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs))),
      ]);
      clearTimeout(timer);
    }
    // Sends still running are left to their leases: they come back as due, counted as reclaimed.
    this.#abandoned = true;
    await this.#outcomes.drain(waitMs);
    this.#latencyUs.destroy();
  }

  liveState(id: number, nowMs: number): LiveStateEntry | null {
    const state = this.#states.get(id);
    if (state === undefined) return null;
    const breaker = this.#breakers.get(state.origin);
    return {
      id,
      breaker: breakerCodes[breaker?.state(nowMs) ?? 'closed'],
      inFlight: state.inFlight,
      pausedUntilMs: state.pausedUntilMs > nowMs ? state.pausedUntilMs : null,
    };
  }

  /** Aggregated telemetry since the previous call (posted once per second). */
  takeStats(actorIndex: number): DeliveryStatsMessage {
    const nowMs = Date.now();
    const subscriptions: Array<DeliveryStatsMessage['subscriptions'][number]> = [];
    const collect = (id: number, state: SubscriptionState): void => {
      if (state.outcomeCounts.every((n) => n === 0) && state.classCounts.every((n) => n === 0)) return;
      subscriptions.push({ id, outcomes: [...state.outcomeCounts], classes: [...state.classCounts] });
      state.outcomeCounts.fill(0);
      state.classCounts.fill(0);
    };
    for (const [id, state] of this.#states) collect(id, state);
    for (const state of this.#retired) collect(state.row.id, state);
    this.#retired = [];
    const live: LiveStateEntry[] = [];
    for (const id of this.#states.keys()) {
      const entry = this.liveState(id, nowMs);
      if (entry !== null && (entry.breaker !== 0 || entry.inFlight !== 0 || entry.pausedUntilMs !== null)) live.push(entry);
    }
    const breakersOpen: string[] = [];
    for (const [origin, breaker] of this.#breakers) if (breaker.state(nowMs) !== 'closed') breakersOpen.push(origin);
    const histogram = this.#latencyUs.totalCount === 0 ? null : encodeHistogram(this.#latencyUs);
    const message: DeliveryStatsMessage = {
      type: 'stats',
      actorIndex,
      subscriptions,
      latencyHistogram: histogram,
      latencySumUs: this.#latencySumUs,
      reclaimed: this.#reclaimed,
      deferrals: [...this.#deferrals],
      inFlight: this.#inFlightTotal,
      breakersOpen,
      live,
      owned: this.#ownedChanged ? [...this.#states.keys()] : null,
    };
    this.#latencyUs.reset();
    this.#latencySumUs = 0;
    this.#reclaimed = 0;
    this.#deferrals.fill(0);
    this.#ownedChanged = false;
    return message;
  }

  #updateBucket(state: SubscriptionState, nowMs: number): void {
    const rate = state.row.rateLimitPerS;
    if (rate === null) state.bucket = null;
    else if (state.bucket === null) state.bucket = new TokenBucket(rate, nowMs);
    else state.bucket.setRate(rate);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      for (;;) {
        this.#pumpAgain = false;
        const claimed = await this.#pass();
        if (!claimed && !this.#pumpAgain) break;
      }
    } finally {
      this.#pumping = false;
      this.#armTimer();
    }
  }

  /** One round over the ready subscriptions; whether anything was claimed. */
  async #pass(): Promise<boolean> {
    if (this.#stopping || this.#outcomes.backingOff || this.#outcomes.size >= outcomesBufferedMax) return false;
    if (Date.now() < this.#claimsBlockedUntilMs) return false;
    let claimedAny = false;
    for (const id of [...this.#ready]) {
      const state = this.#states.get(id);
      if (state === undefined || !state.row.enabled) {
        this.#ready.delete(id);
        continue;
      }
      try {
        const result = await this.#claimFor(state);
        if (result === 'blocked') continue;
        claimedAny ||= result !== 'empty';
        this.#ready.delete(id);
        if (result === 'more') this.#ready.add(id);
      } catch (error) {
        this.#claimFailed(error);
        return false;
      }
      if (this.#stopping) break;
    }
    return claimedAny;
  }

  /**
   * Claims what this subscription may send now: 'blocked' (nothing allowed, it stays ready),
   * 'more' (a claim came back full), 'some' or 'empty' (its due rows ran out).
   */
  async #claimFor(state: SubscriptionState): Promise<'blocked' | 'more' | 'some' | 'empty'> {
    const nowMs = Date.now();
    if (state.pausedUntilMs > nowMs) return 'blocked';
    const breaker = this.#breakers.get(state.origin) as EndpointBreaker;
    const endpointAllowance = breaker.allowance(nowMs);
    if (endpointAllowance === 0) {
      this.#defer(state, breaker.state(nowMs) === 'closed' ? 'in_flight' : 'breaker', nowMs);
      return 'blocked';
    }
    const free = state.row.maxInFlight - state.inFlight;
    if (free <= 0) {
      this.#defer(state, 'in_flight', nowMs);
      return 'blocked';
    }
    // Refill in chunks, not one row per finished send: a claim is a round trip.
    if (state.inFlight > 0 && free < Math.ceil(state.row.maxInFlight / 4)) return 'blocked';
    const tokens = state.bucket === null ? Number.POSITIVE_INFINITY : state.bucket.available(nowMs);
    if (tokens === 0) {
      this.#defer(state, 'rate_limit', nowMs);
      return 'blocked';
    }
    const allowed = Math.min(free, endpointAllowance, tokens, claimRowsMax);
    const live = await this.#claimLane(state, liveLane, allowed, breaker);
    if (live === allowed) return 'more';
    if (!state.replayMaybe) return live > 0 ? 'some' : 'empty';
    const replayCap = Math.max(1, Math.floor(state.row.maxInFlight / 4));
    const replayAllowed = Math.min(allowed - live, replayCap - state.replayInFlight);
    if (replayAllowed <= 0) return live > 0 ? 'more' : 'blocked';
    const replay = await this.#claimLane(state, replayLane, replayAllowed, breaker);
    if (replay < replayAllowed) state.replayMaybe = false;
    if (replay === replayAllowed) return 'more';
    return live + replay > 0 ? 'some' : 'empty';
  }

  async #claimLane(state: SubscriptionState, lane: DeliveryLane, count: number, breaker: EndpointBreaker): Promise<number> {
    const token = String(randomInt(1, 2 ** 47));
    state.bucket?.take(count, Date.now());
    const rows = await claimDeliveries(this.#pool, state.row.id, lane, count, this.#settings.leaseMs, token).catch((error: unknown) => {
      state.bucket?.giveBack(count);
      throw error;
    });
    // Tokens pay for rows sent, not for rows asked for.
    state.bucket?.giveBack(count - rows.length);
    this.#claimBackoffMs = 0;
    const nowMs = Date.now();
    for (const row of rows) this.#startSend(state, row, lane, token, breaker.started(nowMs), breaker);
    return rows.length;
  }

  #startSend(state: SubscriptionState, row: ClaimedDelivery, lane: DeliveryLane, token: string, isProbe: boolean, breaker: EndpointBreaker): void {
    state.inFlight += 1;
    if (lane === replayLane) state.replayInFlight += 1;
    this.#inFlightTotal += 1;
    if (row.reclaimed) this.#reclaimed += 1;
    const flight: Flight = { state, row, lane, token, isProbe, breaker, attemptedAtMs: Date.now() };
    if (row.eventType === null) {
      this.#finish(flight, missingEventVerdict, noSend('the event is no longer stored'));
      return;
    }
    if (state.url === null) {
      this.#finish(flight, verdictOfError(destinationRefusedCode, destinationRefusedCode), noSend(`url ${state.row.url} is not a valid URL`));
      return;
    }
    const event = { eventId: row.eventId, eventType: row.eventType, source: row.source, actorId: row.actorId, timestamp: row.timestamp, attributesJson: row.attributesJson };
    this.#sender.send(state.url, this.#keysOf(state, flight.attemptedAtMs), event, row.attempt).then(
      (result) => {
        const verdict = result.statusCode !== null ? verdictOfStatus(result.statusCode) : verdictOfError(result.errorCode, destinationRefusedCode);
        this.#finish(flight, verdict, result);
      },
      (error: unknown) => {
        // send() catches what undici throws; this is a bug of ours, retried on the schedule.
        const result = noSend(error instanceof Error ? error.message : String(error), errorCodeOf(error));
        this.#finish(flight, verdictOfError(null, destinationRefusedCode), result);
      },
    );
  }

  #finish(flight: Flight, verdict: Verdict, result: SendResult): void {
    const { state, row } = flight;
    const nowMs = Date.now();
    state.inFlight -= 1;
    if (flight.lane === replayLane) state.replayInFlight -= 1;
    this.#inFlightTotal -= 1;
    flight.breaker.finished(verdict.breakerSuccess, flight.isProbe, nowMs);
    if (this.#abandoned) return;
    const { outcome, delayMs } = this.#decide(state, row, verdict, result, nowMs);
    increment(state.outcomeCounts, attemptOutcomes.indexOf(outcome));
    increment(state.classCounts, errorClasses.indexOf(verdict.errorClass));
    if (outcome === 'delivered') {
      const latencyUs = trackable((nowMs - row.createdAtMs) * 1000);
      this.#latencyUs.recordValue(latencyUs);
      this.#latencySumUs += latencyUs;
    }
    if (delayMs !== null) state.wakeAtMs = Math.min(state.wakeAtMs, nowMs + delayMs);
    if (verdict.disableSubscription) this.#disable(state);
    this.#outcomes.push({
      deliveryId: row.id,
      subscriptionId: state.row.id,
      leaseToken: flight.token,
      attempt: row.attempt,
      attemptedAtMs: flight.attemptedAtMs,
      durationMs: result.durationMs,
      outcome,
      status: outcome === 'retry' ? 'pending' : outcome,
      retryDelayMs: delayMs,
      statusCode: result.statusCode,
      errorClass: verdict.errorClass,
      error: errorText(verdict, result),
      responseBody: result.responseBody,
    });
    if (this.#inFlightTotal === 0 && this.#onIdle !== null) this.#onIdle();
    this.kick();
  }

  /** The attempt's final outcome and, for a retry, its delay (the schedule may turn it into 'failed'). */
  #decide(state: SubscriptionState, row: ClaimedDelivery, verdict: Verdict, result: SendResult, nowMs: number): { outcome: Verdict['outcome']; delayMs: number | null } {
    if (verdict.outcome !== 'retry') return { outcome: verdict.outcome, delayMs: null };
    const schedule = state.row.retryScheduleS ?? defaultRetryScheduleS;
    const maxAgeS = state.row.retryMaxAgeS ?? defaultRetryMaxAgeS;
    const scheduledMs = retryDelayMs(schedule, row.attempt, nowMs - row.scheduleStartedAtMs, maxAgeS);
    if (scheduledMs === null) return { outcome: 'failed', delayMs: null };
    if (verdict.retryAfter === null) return { outcome: 'retry', delayMs: scheduledMs };
    const askedMs = retryAfterMs(result.retryAfter, nowMs, this.#settings.retryAfterMaxMs);
    if (verdict.retryAfter === 'delivery') return { outcome: 'retry', delayMs: askedMs ?? scheduledMs };
    const pauseMs = askedMs ?? Math.min(defaultThrottleMs, this.#settings.retryAfterMaxMs);
    state.pausedUntilMs = Math.max(state.pausedUntilMs, nowMs + pauseMs);
    return { outcome: 'retry', delayMs: pauseMs };
  }

  #disable(state: SubscriptionState): void {
    if (!state.row.enabled) return;
    state.row = { ...state.row, enabled: false };
    this.#ready.delete(state.row.id);
    disableAfterGone(this.#pool, state.row.id).catch((error: unknown) =>
      this.#log.warn({ err: error, subscription: state.row.id }, 'could not disable a subscription after 410 Gone; the next 410 tries again'));
  }

  #keysOf(state: SubscriptionState, nowMs: number): readonly Buffer[] {
    if (nowMs >= state.validKeysUntilMs) Object.assign(state, validKeysAt(state.row, state.keys, nowMs));
    return state.validKeys;
  }

  /**
   * Counted at most once per second per subscription and reason, so the counter's rate is
   * about the number of subscriptions held back, whatever the scheduler's pass rate.
   */
  #defer(state: SubscriptionState, reason: (typeof deferralReasons)[number], nowMs: number): void {
    const index = deferralReasons.indexOf(reason);
    const second = Math.floor(nowMs / 1000);
    if (state.deferredSecond[index] === second) return;
    state.deferredSecond[index] = second;
    increment(this.#deferrals, index);
  }

  #claimFailed(error: unknown): void {
    const first = this.#claimBackoffMs === 0;
    this.#claimBackoffMs = Math.min(Math.max(this.#claimBackoffMs * 2, databaseBackoffMsMin), databaseBackoffMsMax);
    this.#claimsBlockedUntilMs = Date.now() + this.#claimBackoffMs;
    // Once per outage, not once per retry.
    if (first) this.#log.warn({ err: error }, 'claiming deliveries failed; backing off until the database answers');
    else this.#log.debug({ err: error, retryInMs: this.#claimBackoffMs }, 'claiming deliveries failed again');
  }

  /** One timer for the earliest moment something blocked can move: a retry, a pause, a breaker, a token, a backoff. */
  #armTimer(): void {
    if (this.#stopping) return;
    const nowMs = Date.now();
    let atMs = this.#claimsBlockedUntilMs > nowMs ? this.#claimsBlockedUntilMs : Number.POSITIVE_INFINITY;
    for (const [id, state] of this.#states) {
      if (!state.row.enabled) continue;
      if (state.wakeAtMs <= nowMs) {
        state.wakeAtMs = Number.POSITIVE_INFINITY;
        this.#ready.add(id);
        atMs = nowMs;
        continue;
      }
      atMs = Math.min(atMs, state.wakeAtMs);
      if (!this.#ready.has(id)) continue;
      if (state.pausedUntilMs > nowMs) atMs = Math.min(atMs, state.pausedUntilMs);
      const openUntilMs = (this.#breakers.get(state.origin) as EndpointBreaker).openUntilMs;
      if (openUntilMs > nowMs) atMs = Math.min(atMs, openUntilMs);
      if (state.bucket !== null && state.inFlight < state.row.maxInFlight) {
        const waitMs = state.bucket.msUntilToken(nowMs);
        if (waitMs > 0) atMs = Math.min(atMs, nowMs + waitMs);
      }
    }
    if (atMs === Number.POSITIVE_INFINITY || atMs >= this.#timerAtMs) return;
    this.#clearTimer();
    this.#timerAtMs = atMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAtMs = Number.POSITIVE_INFINITY;
      this.kick();
    }, Math.max(0, atMs - nowMs));
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
  }
}

function stateOf(row: SubscriptionRow, nowMs: number): SubscriptionState {
  return {
    row,
    ...identityOf(row, nowMs),
    inFlight: 0,
    replayInFlight: 0,
    bucket: null,
    pausedUntilMs: 0,
    wakeAtMs: Number.POSITIVE_INFINITY,
    replayMaybe: true,
    outcomeCounts: new Float64Array(attemptOutcomes.length),
    classCounts: new Float64Array(errorClasses.length),
    deferredSecond: new Float64Array(deferralReasons.length).fill(-1),
  };
}

/** What follows from the row's URL and secrets (parsed once per reload, not per send). */
function identityOf(row: SubscriptionRow, nowMs: number): Pick<SubscriptionState, 'url' | 'origin' | 'keys' | 'validKeys' | 'validKeysUntilMs'> {
  let url: URL | null = null;
  try {
    url = new URL(row.url);
  } catch {
    url = null;
  }
  const keys = row.secrets.map(signingKeyOf);
  return { url, origin: url?.origin ?? row.url, keys, ...validKeysAt(row, keys, nowMs) };
}

/** secrets[0] always signs; secrets[i] signs until secretExpiresAtMs[i - 1]. */
function validKeysAt(row: SubscriptionRow, keys: readonly Buffer[], nowMs: number): { validKeys: Buffer[]; validKeysUntilMs: number } {
  const validKeys: Buffer[] = [];
  let validKeysUntilMs = Number.POSITIVE_INFINITY;
  keys.forEach((key, i) => {
    const expiresAtMs = i === 0 ? Number.POSITIVE_INFINITY : (row.secretExpiresAtMs[i - 1] ?? 0);
    if (expiresAtMs <= nowMs) return;
    validKeys.push(key);
    validKeysUntilMs = Math.min(validKeysUntilMs, expiresAtMs);
  });
  return { validKeys, validKeysUntilMs };
}

function increment(counts: Float64Array, index: number): void {
  counts[index] = (counts[index] as number) + 1;
}

function noSend(message: string, code: string | null = null): SendResult {
  return { statusCode: null, errorCode: code, errorMessage: message, retryAfter: null, responseBody: null, durationMs: 0 };
}

function errorText(verdict: Verdict, result: SendResult): string | null {
  if (verdict.outcome === 'delivered') return null;
  if (result.statusCode !== null) return `endpoint answered ${result.statusCode}`;
  const message = result.errorMessage ?? 'unknown error';
  return (result.errorCode === null ? message : `${result.errorCode}: ${message}`).replaceAll('\u0000', '').slice(0, 1000);
}

/**
 * Outcomes waiting to be written: flushed when 200 are queued or 5 ms after the first, one
 * statement each, one flush at a time. A failed write keeps its rows (in order) and retries
 * with backoff; `backingOff` tells the scheduler to stop claiming meanwhile.
 */
class OutcomeWriter {
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #onRecovered: () => void;
  #queued: OutcomeRecord[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #backoffMs = 0;
  backingOff = false;

  constructor(pool: pg.Pool, log: Logger, onRecovered: () => void) {
    this.#pool = pool;
    this.#log = log;
    this.#onRecovered = onRecovered;
  }

  get size(): number {
    return this.#queued.length;
  }

  push(outcome: OutcomeRecord): void {
    this.#queued.push(outcome);
    if (this.backingOff || this.#flushing !== null) return;
    if (this.#queued.length >= outcomeBatchRowsMax) this.#flushSoon(0);
    else if (this.#timer === null) this.#flushSoon(outcomeBatchWaitMs);
  }

  /** Writes everything queued, retrying until `waitMs` has passed. */
  async drain(waitMs: number): Promise<void> {
    const deadlineMs = Date.now() + waitMs;
    while (this.#queued.length > 0 && Date.now() < deadlineMs) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
      await (this.#flushing ?? this.#flush());
      if (this.backingOff && this.#queued.length > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(this.#backoffMs, Math.max(0, deadlineMs - Date.now()))));
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#queued.length > 0) this.#log.warn({ outcomes: this.#queued.length }, 'delivery outcomes not written at stop; their leases will bring them back');
  }

  #flushSoon(delayMs: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#flush();
    }, delayMs);
  }

  #flush(): Promise<void> {
    if (this.#flushing !== null) return this.#flushing;
    this.#flushing = this.#write().finally(() => {
      this.#flushing = null;
      if (this.#queued.length > 0 && this.#timer === null) this.#flushSoon(this.backingOff ? this.#backoffMs : 0);
    });
    return this.#flushing;
  }

  async #write(): Promise<void> {
    const batch = this.#queued.splice(0, 1000);
    if (batch.length === 0) return;
    try {
      await writeOutcomes(this.#pool, batch);
    } catch (error) {
      this.#queued.unshift(...batch);
      this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, databaseBackoffMsMin), databaseBackoffMsMax);
      if (!this.backingOff) this.#log.warn({ err: error, outcomes: this.#queued.length }, 'writing delivery outcomes failed; kept in memory and retried');
      this.backingOff = true;
      return;
    }
    this.#backoffMs = 0;
    // Claiming resumes once the backlog of outcomes is written, not at the first success.
    if (this.backingOff && this.#queued.length === 0) {
      this.backingOff = false;
      this.#log.info({}, 'delivery outcomes written again');
      this.#onRecovered();
    }
  }
}

/** The subscription store's rule for a receiver's 410, on a pooled connection of this actor. */
async function disableAfterGone(pool: pg.Pool, subscriptionId: number): Promise<void> {
  const client = await pool.connect();
  try {
    await disableSubscription(client, subscriptionId, 'endpoint answered 410 Gone');
  } finally {
    client.release();
  }
}
