import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, niceStep, renderTimelineSvg, type TimelineChart } from '../../bench/load/svg-chart';

/**
 * A small well-formedness check: every tag closes in order, attributes are quoted, and
 * no bare `&` or `<` appears in text. Enough to catch what string-built SVG gets wrong.
 */
function assertWellFormedXml(xml: string): string[] {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let match = tag.exec(body); match !== null; match = tag.exec(body)) {
    const text = body.slice(last, match.index);
    assert.doesNotMatch(text, /<|&(?!(lt|gt|amp|apos|quot);)/, `bad text before <${match[2]}>: ${text.slice(0, 60)}`);
    last = tag.lastIndex;
    const [, closing, name, , selfClosing] = match as unknown as [string, string, string, string, string];
    names.push(name);
    if (closing === '/') assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else if (selfClosing !== '/') stack.push(name);
  }
  assert.equal(body.slice(last).trim(), '', 'text after the root element');
  assert.deepEqual(stack, [], 'unclosed elements');
  return names;
}

const chart: TimelineChart = {
  title: 'spike → floodgate: 60,000 events/s & <friends>',
  subtitle: 'closed model "quoted"',
  seconds: [1, 2, 3, 4, 5],
  panels: [
    { title: 'events', unit: 'events/s', series: [{ name: 'events/s', color: '#1f77b4', values: [100, 50_000, 61_000, 59_000, 20] }] },
    {
      title: 'latency',
      unit: 'ms',
      series: [
        { name: 'p50', color: '#2ca02c', values: [1.5, null, 30, 31, 2] },
        { name: 'p99', color: '#d62728', values: [4, null, 120, 90, 5] },
      ],
    },
  ],
  markers: [{ atS: 0, label: 'calm' }, { atS: 2, label: 'spike' }],
};

test('the timeline chart is well-formed SVG with one path per series and the title escaped', () => {
  const svg = renderTimelineSvg(chart);
  const names = assertWellFormedXml(svg);
  assert.equal(names[0], 'svg');
  assert.match(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
  assert.equal((svg.match(/<path /g) ?? []).length, 3);
  assert.ok(svg.includes('60,000 events/s &amp; &lt;friends&gt;'));
  assert.ok(svg.includes('closed model &quot;quoted&quot;'));
  assert.ok(svg.includes('>spike</text>'));
});

test('a null value splits a line into segments instead of drawing through zero', () => {
  const svg = renderTimelineSvg(chart);
  const p50 = /<path d="([^"]+)" fill="none" stroke="#2ca02c"/.exec(svg);
  assert.ok(p50 !== null);
  assert.equal((p50[1] as string).match(/M/g)?.length, 2, 'two segments around the gap');
});

test('an empty or all-zero run still renders valid SVG', () => {
  assertWellFormedXml(renderTimelineSvg({ ...chart, seconds: [], panels: [{ title: 'x', unit: 'y', series: [{ name: 'a', color: '#000', values: [] }] }], markers: [] }));
  assertWellFormedXml(renderTimelineSvg({ ...chart, seconds: [1, 2], panels: [{ title: 'x', unit: 'y', series: [{ name: 'a', color: '#000', values: [0, 0] }] }] }));
});

test('axis steps are 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(100), 20);
  assert.equal(niceStep(61_000), 20_000);
  assert.equal(niceStep(0.9), 0.2);
  assert.equal(niceStep(0), 1);
  assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
});
