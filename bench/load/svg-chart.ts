/**
 * A small SVG writer for a run's timeline: throughput on top, latency percentiles below,
 * one point per second, phase changes as dashed lines. Plain SVG 1.1 text, no scripts,
 * no external fonts or styles, so it renders the same in a browser, on GitHub and in an
 * image viewer.
 */

export interface ChartSeries {
  readonly name: string;
  readonly color: string;
  /** One value per second; null leaves a gap (no answers in that second). */
  readonly values: readonly (number | null)[];
}

export interface ChartPanel {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly ChartSeries[];
}

export interface TimelineChart {
  readonly title: string;
  readonly subtitle: string;
  /** x value (seconds since the start) of each point. */
  readonly seconds: readonly number[];
  readonly panels: readonly ChartPanel[];
  readonly markers: readonly { readonly atS: number; readonly label: string }[];
  /** Right end of the x axis (seconds); the last point's x when absent. */
  readonly xMaxS?: number;
}

const width = 960;
const panelHeight = 230;
const margin = { left: 84, right: 24, top: 76, gap: 56, bottom: 44 };

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[char] as string);
}

/** Tick step of 1, 2 or 5 × 10^k giving about `count` ticks over [0, max]. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

function formatTick(value: number): string {
  if (value >= 1_000_000) return `${value / 1_000_000}M`;
  if (value >= 1000) return `${value / 1000}k`;
  return String(Math.round(value * 1000) / 1000);
}

function seriesPath(values: readonly (number | null)[], xOf: (index: number) => number, yOf: (value: number) => number): string {
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) {
      if (current.length > 0) segments.push(current.join(' '));
      current = [];
      return;
    }
    current.push(`${current.length === 0 ? 'M' : 'L'}${xOf(index).toFixed(1)},${yOf(value).toFixed(1)}`);
  });
  if (current.length > 0) segments.push(current.join(' '));
  return segments.join(' ');
}

function renderPanel(chart: TimelineChart, panel: ChartPanel, top: number, xAt: (second: number) => number): string[] {
  const xOf = (index: number): number => xAt(chart.seconds[index] ?? 0);
  const plotWidth = width - margin.left - margin.right;
  const all = panel.series.flatMap((series) => series.values.filter((value): value is number => value !== null && Number.isFinite(value)));
  const step = niceStep(Math.max(0, ...all));
  const yMax = Math.max(step, Math.ceil(Math.max(0, ...all) / step) * step);
  const yOf = (value: number): number => top + panelHeight - (value / yMax) * panelHeight;
  const parts = [
    `<text x="${margin.left}" y="${top - 10}" font-size="13" font-weight="bold">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`,
    `<rect x="${margin.left}" y="${top}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#999"/>`,
  ];
  for (let value = 0; value <= yMax + step / 2; value += step) {
    const y = yOf(value).toFixed(1);
    parts.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotWidth}" y2="${y}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${formatTick(value)}</text>`);
  }
  panel.series.forEach((series, index) => {
    const d = seriesPath(series.values, xOf, yOf);
    if (d !== '') parts.push(`<path d="${d}" fill="none" stroke="${escapeXml(series.color)}" stroke-width="1.8"/>`);
    const legendX = margin.left + plotWidth - 150 * (panel.series.length - index);
    parts.push(`<rect x="${legendX}" y="${top - 20}" width="14" height="4" fill="${escapeXml(series.color)}"/>`);
    parts.push(`<text x="${legendX + 20}" y="${top - 14}" font-size="11">${escapeXml(series.name)}</text>`);
  });
  for (const marker of chart.markers) {
    const x = xAt(marker.atS).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + panelHeight}" stroke="#888" stroke-dasharray="4,3"/>`);
  }
  return parts;
}

export function renderTimelineSvg(chart: TimelineChart): string {
  const plotWidth = width - margin.left - margin.right;
  const height = margin.top + chart.panels.length * panelHeight + (chart.panels.length - 1) * margin.gap + margin.bottom;
  const lastSecond = chart.xMaxS ?? Math.max(1, ...chart.seconds);
  const xAt = (second: number): number => margin.left + (Math.min(Math.max(second, 0), lastSecond) / lastSecond) * plotWidth;
  const parts = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="24" font-size="16" font-weight="bold">${escapeXml(chart.title)}</text>`,
    ...chart.subtitle.split('\n').map((line, index) => `<text x="${margin.left}" y="${40 + index * 14}" font-size="11" fill="#555">${escapeXml(line)}</text>`),
  ];
  chart.panels.forEach((panel, index) => parts.push(...renderPanel(chart, panel, margin.top + 16 + index * (panelHeight + margin.gap), xAt)));
  const axisY = height - margin.bottom + 16;
  const xStep = niceStep(lastSecond, 10);
  // The first tick is one step in: a 0 here would sit on top of the y axis' 0.
  for (let second = xStep; second <= lastSecond + 1e-9; second += xStep) {
    const x = xAt(second).toFixed(1);
    parts.push(`<text x="${x}" y="${axisY}" font-size="11" text-anchor="middle">${formatTick(second)}</text>`);
  }
  parts.push(`<text x="${margin.left + plotWidth / 2}" y="${axisY + 18}" font-size="11" text-anchor="middle">seconds since start</text>`);
  for (const marker of chart.markers) {
    parts.push(`<text x="${(xAt(marker.atS) + 4).toFixed(1)}" y="${margin.top + 30}" font-size="10" fill="#555">${escapeXml(marker.label)}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
