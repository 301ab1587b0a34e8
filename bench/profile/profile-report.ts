/**
 * The profiles of one run, one per thread, and their Markdown summary: how busy each
 * thread was, its CPU per acknowledged event, where the time went by area, and the
 * functions with the most self time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { markdownTable, round } from '../common/results';
import { areaTimes, busyCores, functionTimes, readThreadProfile, type FunctionTime, type ThreadProfile, type V8CpuProfile } from './cpu-profile';

export interface ProfiledThread {
  /** main, actor-<n> (a thread that ran the actor code), delivery-<n> (the delivery actor's) or worker-<thread id>. */
  readonly thread: string;
  readonly file: string;
  readonly profile: ThreadProfile;
  /** Every function's time, hottest first (functionTimes), and their sums by area. */
  readonly functions: readonly FunctionTime[];
  readonly areas: readonly { readonly area: string; readonly selfUs: number }[];
}

/** `node --cpu-prof` names files CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is main. */
const profileFileName = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/;

export function readProfiles(directory: string, repoRoot: string): ProfiledThread[] {
  const threads: ProfiledThread[] = [];
  let actors = 0;
  let deliveryActors = 0;
  for (const file of readdirSync(directory).sort()) {
    const match = profileFileName.exec(file);
    if (match === null) continue;
    const threadId = Number(match[2]);
    const profile = readThreadProfile(JSON.parse(readFileSync(path.join(directory, file), 'utf8')) as V8CpuProfile, repoRoot);
    const functions = functionTimes(profile);
    const ranActor = functions.some((entry) => entry.location.startsWith('dist/src/actors/actor.js'));
    const ranDelivery = functions.some((entry) => entry.location.startsWith('dist/src/delivery/delivery-actor.js'));
    const thread = threadId === 0 ? 'main' : ranActor ? `actor-${actors++}` : ranDelivery ? `delivery-${deliveryActors++}` : `worker-${threadId}`;
    threads.push({ thread, file, profile, functions, areas: areaTimes(functions) });
  }
  return threads;
}

export interface ProfileRunSummary {
  readonly scenario: string;
  readonly eventsAcknowledged: number;
  readonly eventsPerS: number;
  readonly startedAt: string;
  readonly commit: string | null;
  readonly machine: string;
  readonly intervalUs: number;
}

const topFunctions = 25;

export function renderProfileMarkdown(summary: ProfileRunSummary, threads: readonly ProfiledThread[], svgNames: ReadonlyMap<string, string>): string {
  const perEvent = (us: number): string => (summary.eventsAcknowledged === 0 ? '-' : ((us / summary.eventsAcknowledged) * 1000).toFixed(0));
  const percent = (part: number, whole: number): string => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`;
  const lines = [
    `# CPU profile: ${summary.scenario}`,
    '',
    `Engine run under \`node --cpu-prof\` (sampling every ${summary.intervalUs} µs), ${summary.startedAt}, commit ${summary.commit ?? '?'}, ${summary.machine}.`,
    `The run acknowledged ${summary.eventsAcknowledged.toLocaleString('en-US')} events (${summary.eventsPerS.toLocaleString('en-US')} events/s in its measured phase; the profiler costs some of that).`,
    'Busy time leaves out (idle); per event it is over every acknowledged event of the whole run, warm-up included, as the profile is.',
    '',
    markdownTable(['thread', 'busy cores (mean)', 'busy ns per event', 'flame graph'], threads.map((entry) => [
      entry.thread,
      busyCores(entry.profile).toFixed(2),
      perEvent(entry.profile.busyUs),
      svgNames.get(entry.thread) ?? '-',
    ])),
    '',
  ];
  for (const entry of threads) {
    const busy = entry.profile.busyUs;
    lines.push(`## ${entry.thread}`, '', `Busy ${round(busy / 1000)} ms of ${round(entry.profile.wallUs / 1000)} ms sampled.`, '');
    lines.push(markdownTable(['area (self time)', 'ms', 'share of busy', 'ns per event'], entry.areas.slice(0, 12).map((area) => [
      area.area,
      String(round(area.selfUs / 1000)),
      percent(area.selfUs, busy),
      perEvent(area.selfUs),
    ])), '');
    lines.push(markdownTable(['function', 'where', 'self', 'total (on stack)'], entry.functions.slice(0, topFunctions).map((fn) => [
      fn.name,
      fn.location === '' ? fn.area : fn.location,
      percent(fn.selfUs, busy),
      percent(fn.totalUs, busy),
    ])), '');
  }
  return `${lines.join('\n')}\n`;
}

/** The summary as data (the .json record): per thread its busy time, areas and hottest functions. */
export function profileRecord(summary: ProfileRunSummary, threads: readonly ProfiledThread[]): Record<string, unknown> {
  return {
    ...summary,
    threads: threads.map((entry) => ({
      thread: entry.thread,
      busyUs: Math.round(entry.profile.busyUs),
      wallUs: Math.round(entry.profile.wallUs),
      areas: entry.areas.map((area) => ({ area: area.area, selfUs: Math.round(area.selfUs) })),
      functions: entry.functions.slice(0, topFunctions).map((fn) => ({ ...fn, selfUs: Math.round(fn.selfUs), totalUs: Math.round(fn.totalUs) })),
    })),
  };
}
