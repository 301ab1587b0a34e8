/**
 * A flame graph of one thread's profile as plain SVG: the thread's busy time across the
 * full width, callers below their callees, each box as wide as the time spent in and under
 * that frame. (idle) is left out, so the width is work, not wall time. Boxes narrower
 * than minWidthPx are dropped (they would be invisible and make the file large); every box
 * has a <title> with its time and share, shown as a tooltip in a browser.
 */
import { escapeXml } from '../load/svg-chart';
import type { FrameNode, ThreadProfile } from './cpu-profile';

const width = 1200;
const rowHeight = 16;
const margin = { left: 10, right: 10, top: 56, bottom: 10 };
const minWidthPx = 0.4;
const charWidthPx = 6.6;

/** Warm colours for our code, cool for packages, grey for Node and V8, red for GC. */
function colorOf(frame: FrameNode): string {
  if (frame.area === '(garbage collector)') return '#d9534f';
  if (frame.area.startsWith('src/')) return '#f0a24a';
  if (frame.area.startsWith('bench/') || frame.area.startsWith('test/')) return '#f5cd6a';
  if (frame.area === 'node internals' || frame.area === 'native' || frame.area.startsWith('(')) return '#b8b8b8';
  return '#7fb3d5';
}

interface Box {
  readonly frame: FrameNode;
  readonly x: number;
  readonly depth: number;
  readonly w: number;
}

export function renderFlameSvg(profile: ThreadProfile, title: string, subtitle: string): string {
  const busyChildren = profile.root.children.filter((child) => child.name !== '(idle)');
  const busyUs = Math.max(1, profile.busyUs);
  const scale = (width - margin.left - margin.right) / busyUs;
  const boxes: Box[] = [];
  // Side by side from x, widest first; each frame's callees stack on it, one row up.
  const placeAll = (frames: readonly FrameNode[], x: number, depth: number): void => {
    let left = x;
    for (const frame of [...frames].sort((a, b) => b.totalUs - a.totalUs)) {
      const w = frame.totalUs * scale;
      if (w >= minWidthPx) {
        boxes.push({ frame, x: left, depth, w });
        placeAll(frame.children, left, depth + 1);
      }
      left += w;
    }
  };
  placeAll(busyChildren, margin.left, 0);
  const depthMax = boxes.reduce((max, box) => Math.max(max, box.depth), 0);
  const height = margin.top + (depthMax + 1) * rowHeight + margin.bottom;
  const bottom = height - margin.bottom;
  const parts = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="20" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${margin.left}" y="40" font-size="12" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  for (const box of boxes) {
    const y = bottom - (box.depth + 1) * rowHeight;
    const ms = box.frame.totalUs / 1000;
    const share = (100 * box.frame.totalUs) / busyUs;
    const label = `${box.frame.name}${box.frame.location === '' ? '' : ` ${box.frame.location}`}`;
    const tip = `${label}: ${ms.toFixed(1)} ms, ${share.toFixed(2)}% of busy (self ${(box.frame.selfUs / 1000).toFixed(1)} ms)`;
    parts.push(`<g><title>${escapeXml(tip)}</title><rect x="${box.x.toFixed(2)}" y="${y}" width="${box.w.toFixed(2)}" height="${rowHeight - 1}" fill="${colorOf(box.frame)}" rx="1"/>`);
    const fits = Math.floor((box.w - 4) / charWidthPx);
    if (fits >= 3) {
      const text = box.frame.name.length <= fits ? box.frame.name : `${box.frame.name.slice(0, fits - 1)}…`;
      parts.push(`<text x="${(box.x + 2).toFixed(2)}" y="${y + rowHeight - 4}">${escapeXml(text)}</text>`);
    }
    parts.push('</g>');
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
