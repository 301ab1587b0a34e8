/**
 * Reading V8 CPU profiles (the `.cpuprofile` files `node --cpu-prof` writes, one per
 * thread) into what a flame graph and a hot-function table need: a call tree whose nodes
 * carry the time sampled in them (self) and under them (total), with identical frames
 * under one parent merged.
 *
 * Time comes from `timeDeltas`, not `hitCount` × interval: the sampler runs late when the
 * thread is busy, and a sample stands for the time until the next one.
 */

/** The parts of the V8 profile format this reads. */
export interface V8CpuProfile {
  readonly nodes: readonly V8ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface V8ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

export interface FrameNode {
  /** Function name, or V8's own label: (program), (garbage collector), (idle), (root). */
  readonly name: string;
  /** Where it lives, relative to the repository when inside it; '' for V8's own frames. */
  readonly location: string;
  readonly area: string;
  selfUs: number;
  totalUs: number;
  readonly children: FrameNode[];
}

export interface ThreadProfile {
  readonly root: FrameNode;
  /** Sampled time that was not (idle): what the thread spent working. */
  readonly busyUs: number;
  readonly wallUs: number;
}

const idleName = '(idle)';

/** Groups a frame by what owns the code: our folders, a package, Node itself or V8. */
export function areaOf(name: string, url: string): string {
  if (url === '') return name.startsWith('(') ? name : 'native';
  if (url.startsWith('node:')) return 'node internals';
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1] as string;
  const ownMatch = /\/dist\/(src\/[^/]+|bench\/[^/]+|test\/[^/]+)\//.exec(url);
  if (ownMatch) return ownMatch[1] as string;
  return 'other';
}

function relativeLocation(url: string, line: number, repoRoot: string): string {
  if (url === '') return '';
  const plain = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  const relative = plain.startsWith(`${repoRoot}/`) ? plain.slice(repoRoot.length + 1) : plain;
  // V8 counts lines from 0.
  return `${relative}:${line + 1}`;
}

export function readThreadProfile(profile: V8CpuProfile, repoRoot: string): ThreadProfile {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the gap before sample i, so sample i lasts until sample i + 1.
    const duration = i + 1 < deltas.length ? (deltas[i + 1] as number) : 0;
    const id = samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, duration));
  }
  const rootNode = profile.nodes[0];
  if (rootNode === undefined) throw new Error('CPU profile has no nodes');
  const build = (node: V8ProfileNode): FrameNode => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    const frame: FrameNode = { name, location: relativeLocation(url, lineNumber, repoRoot), area: areaOf(name, url), selfUs: selfUs.get(node.id) ?? 0, totalUs: 0, children: [] };
    for (const childId of node.children ?? []) {
      const child = byId.get(childId);
      if (child !== undefined) mergeChild(frame, build(child));
    }
    frame.totalUs = frame.selfUs + frame.children.reduce((sum, child) => sum + child.totalUs, 0);
    return frame;
  };
  const root = build(rootNode);
  const idleUs = root.children.filter((child) => child.name === idleName).reduce((sum, child) => sum + child.totalUs, 0);
  return { root, busyUs: root.totalUs - idleUs, wallUs: profile.endTime - profile.startTime };
}

/** Same function at the same place under one parent: one node (V8 splits them by inlining state). */
function mergeChild(parent: FrameNode, child: FrameNode): void {
  const twin = parent.children.find((other) => other.name === child.name && other.location === child.location);
  if (twin === undefined) {
    parent.children.push(child);
    return;
  }
  twin.selfUs += child.selfUs;
  twin.totalUs += child.totalUs;
  for (const grandchild of child.children) mergeChild(twin, grandchild);
}

/** Mean cores the thread kept busy over the time it was sampled. */
export function busyCores(profile: ThreadProfile): number {
  return profile.busyUs / Math.max(1, profile.wallUs);
}

export interface FunctionTime {
  readonly name: string;
  readonly location: string;
  readonly area: string;
  readonly selfUs: number;
  /** Time with this function anywhere on the stack, counted once per sample. */
  readonly totalUs: number;
}

/** Every function's self and inclusive time over the whole tree, idle left out. */
export function functionTimes(profile: ThreadProfile): FunctionTime[] {
  const times = new Map<string, { name: string; location: string; area: string; selfUs: number; totalUs: number }>();
  const walk = (frame: FrameNode, onStack: Set<string>): void => {
    if (frame.name === idleName) return;
    const key = `${frame.name}@${frame.location}`;
    let entry = times.get(key);
    if (entry === undefined) {
      entry = { name: frame.name, location: frame.location, area: frame.area, selfUs: 0, totalUs: 0 };
      times.set(key, entry);
    }
    entry.selfUs += frame.selfUs;
    // A recursive function is counted once for the outermost frame.
    const outermost = !onStack.has(key);
    if (outermost) {
      entry.totalUs += frame.totalUs;
      onStack.add(key);
    }
    for (const child of frame.children) walk(child, onStack);
    if (outermost) onStack.delete(key);
  };
  for (const child of profile.root.children) walk(child, new Set());
  return [...times.values()].sort((a, b) => b.selfUs - a.selfUs);
}

/** Self time per area (our folders, packages, Node, V8's GC and program), from functionTimes. */
export function areaTimes(functions: readonly FunctionTime[]): { area: string; selfUs: number }[] {
  const totals = new Map<string, number>();
  for (const entry of functions) totals.set(entry.area, (totals.get(entry.area) ?? 0) + entry.selfUs);
  return [...totals.entries()].map(([area, selfUs]) => ({ area, selfUs })).sort((a, b) => b.selfUs - a.selfUs);
}
