import { describe, expect, it } from 'vitest';
import { barPlot, escapeXml, formatTick, linePlot, logTicks, multiPanel, niceTicks } from '../src/io/plot.ts';

// Minimal well-formedness check without a DOM: every tag is closed in order, attributes are quoted, and no text
// contains a raw '<' or an unescaped '&'.
function assertWellFormed(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  const stack: string[] = [];
  const tagRe = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of svg.matchAll(tagRe)) {
    const text = svg.slice(last, m.index);
    if (/[<>]/.test(text)) throw new Error(`malformed markup near: ${svg.slice(last, last + 80)}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`unescaped & in text: ${text}`);
    last = m.index! + m[0].length;
    const [, close, name, , selfClose] = m;
    if (close) {
      const top = stack.pop();
      if (top !== name) throw new Error(`</${name}> closes <${top}>`);
    } else if (!selfClose) stack.push(name!);
  }
  if (/[<>]/.test(svg.slice(last))) throw new Error('trailing malformed markup');
  expect(stack).toEqual([]);
}

// Every number in path data and in numeric attributes is finite.
function assertFiniteNumbers(svg: string): void {
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  for (const m of svg.matchAll(/\sd="([^"]*)"/g)) {
    const nums = m[1]!
      .split(/[ML\s]+/)
      .filter(Boolean)
      .map(Number);
    expect(nums.length).toBeGreaterThan(0);
    for (const v of nums) expect(Number.isFinite(v)).toBe(true);
  }
  for (const m of svg.matchAll(/\s(?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"/g)) expect(Number.isFinite(Number(m[1]))).toBe(true);
}

describe('test helpers', () => {
  it('reject broken markup and non-finite numbers (so the checks below can fail)', () => {
    const head = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1">';
    expect(() => assertWellFormed(`${head}<g></svg>`)).toThrow();
    expect(() => assertWellFormed(`${head}<text>a < b</text></svg>`)).toThrow();
    expect(() => assertWellFormed(`${head}<text>a & b</text></svg>`)).toThrow();
    expect(() => assertFiniteNumbers(`${head}<path d="M0 0 L1 NaN"/></svg>`)).toThrow();
    expect(() => assertWellFormed(`${head}<g><path d="M0 0"/></g></svg>`)).not.toThrow();
  });
});

describe('ticks', () => {
  it('gives nice, noise-free ticks for [0.0013, 0.0019]', () => {
    const t = niceTicks(0.0013, 0.0019);
    expect(t.values[0]).toBeLessThanOrEqual(0.0013);
    expect(t.values[t.values.length - 1]).toBeGreaterThanOrEqual(0.0019);
    expect(t.values.length).toBeGreaterThanOrEqual(3);
    expect(t.values.length).toBeLessThanOrEqual(10);
    for (const l of t.labels) expect(l).toMatch(/^0\.00\d{1,3}$/); // no 0.0014000000000000002
    // Equal spacing of 1, 2 or 5 times a power of ten.
    const step = t.values[1]! - t.values[0]!;
    const mant = step / 10 ** Math.floor(Math.log10(step));
    expect([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6)).toBe(true);
    for (let i = 1; i < t.values.length; i++) expect(t.values[i]! - t.values[i - 1]!).toBeCloseTo(step, 12);
    expect(new Set(t.labels).size).toBe(t.labels.length);
  });

  it('handles a single value, negative ranges and reversed input', () => {
    const one = niceTicks(5, 5);
    expect(one.values[0]).toBeLessThan(5);
    expect(one.values[one.values.length - 1]).toBeGreaterThan(5);
    const zero = niceTicks(0, 0);
    expect(zero.values[0]).toBeLessThan(0);
    expect(zero.values[zero.values.length - 1]).toBeGreaterThan(0);
    const neg = niceTicks(-3.2, -0.4);
    expect(neg.values[0]).toBeLessThanOrEqual(-3.2);
    expect(neg.values[neg.values.length - 1]).toBeGreaterThanOrEqual(-0.4);
    expect(neg.labels.every((l) => l.startsWith('-') || l === '0')).toBe(true);
    const mixed = niceTicks(-3.2, 7.9);
    expect(mixed.values).toContain(0);
    expect(niceTicks(10, 1).values).toEqual(niceTicks(1, 10).values);
  });

  it('gives decade ticks on a log axis for [1, 1e6]', () => {
    const t = logTicks(1, 1e6);
    expect(t.values).toEqual([1, 10, 100, 1000, 1e4, 1e5, 1e6]);
    expect(t.labels).toEqual(['1', '10', '100', '1000', '1e4', '1e5', '1e6']);
    const wide = logTicks(1e-8, 1e9); // many decades: thinned, still covering the data
    expect(wide.values.length).toBeLessThanOrEqual(10);
    expect(wide.values[0]).toBeLessThanOrEqual(1e-8);
    expect(wide.values[wide.values.length - 1]).toBeGreaterThanOrEqual(1e9);
    const narrow = logTicks(0.3, 4); // under a decade: 1-2-5 ticks
    expect(narrow.values).toEqual([0.2, 0.5, 1, 2, 5]);
  });

  it('formats tick labels without float noise', () => {
    expect(formatTick(0.30000000000000004, 0.1)).toBe('0.3');
    expect(formatTick(1500000, 500000)).toBe('1.5e6');
    expect(formatTick(0.00025, 0.00005)).toBe('2.5e-4');
    expect(formatTick(-20, 10)).toBe('-20');
  });
});

describe('linePlot', () => {
  it('renders well-formed SVG with axes, a legend, distinct colours and escaped text', () => {
    const svg = linePlot({
      title: 'loss <train> & "val"',
      xLabel: 'step',
      yLabel: "model's loss",
      series: [
        {
          name: 'train',
          points: [
            [0, 3],
            [1, 2.5],
            [2, 2.1],
          ],
        },
        {
          name: 'val & more',
          points: [
            [0, 3.1],
            [2, 2.4],
          ],
          dashed: true,
        },
      ],
    });
    assertWellFormed(svg);
    assertFiniteNumbers(svg);
    expect(svg).toContain('loss &lt;train&gt; &amp; &quot;val&quot;');
    expect(svg).toContain('model&apos;s loss');
    expect(svg).toContain('val &amp; more');
    const strokes = [...svg.matchAll(/<path[^>]*stroke="([^"]+)"/g)].map((m) => m[1]);
    expect(strokes.length).toBe(2);
    expect(new Set(strokes).size).toBe(2);
    expect(svg).toMatch(/<path[^>]*stroke-dasharray/);
  });

  it('skips NaN/Inf points as gaps and draws an isolated point as a dot', () => {
    const svg = linePlot({
      series: [
        {
          name: 's',
          points: [
            [0, 1],
            [1, 2],
            [2, NaN],
            [3, 4],
            [4, 5],
            [5, Infinity],
            [6, 3],
            [7, -Infinity],
          ],
        },
      ],
    });
    assertWellFormed(svg);
    assertFiniteNumbers(svg);
    expect([...svg.matchAll(/<path /g)].length).toBe(2); // [0,1] and [3,4] runs
    expect([...svg.matchAll(/<circle /g)].length).toBe(1); // the lone point at x=6
    const single = linePlot({ series: [{ name: 'one', points: [[3, 7]] }] });
    assertWellFormed(single);
    assertFiniteNumbers(single);
    expect([...single.matchAll(/<circle /g)].length).toBe(1);
  });

  it('handles empty series and no series', () => {
    for (const svg of [
      linePlot({ series: [] }),
      linePlot({ series: [{ name: 'e', points: [] }] }),
      linePlot({ series: [{ name: 'nan', points: [[NaN, NaN]] }] }),
    ]) {
      assertWellFormed(svg);
      assertFiniteNumbers(svg);
      expect(svg).toContain('no data');
    }
  });

  it('uses a log y axis, skipping non-positive values', () => {
    const svg = linePlot({
      logY: true,
      series: [
        {
          name: 'g',
          points: [
            [0, 1],
            [1, 1e3],
            [2, 0],
            [3, 1e6],
            [4, 1e5],
          ],
        },
      ],
    });
    assertWellFormed(svg);
    assertFiniteNumbers(svg);
    for (const l of ['1', '10', '100', '1000', '1e4', '1e5', '1e6']) expect(svg).toContain(`>${l}</text>`);
    // y=0 cannot be drawn on a log axis: it splits the line into [0,1] and [3,4].
    expect([...svg.matchAll(/<path /g)].length).toBe(2);
    expect([...svg.matchAll(/<circle /g)].length).toBe(0);
  });

  it('maps negative values inside the plot area', () => {
    const svg = linePlot({
      series: [
        {
          name: 'n',
          points: [
            [0, -5],
            [1, -1],
            [2, -3],
          ],
        },
      ],
      width: 400,
      height: 300,
    });
    assertWellFormed(svg);
    const d = /<path d="([^"]+)"/.exec(svg)![1]!;
    const ys = [...d.matchAll(/[ML]([\d.-]+) ([\d.-]+)/g)].map((m) => Number(m[2]));
    expect(ys.every((y) => y >= 0 && y <= 300)).toBe(true);
    expect(ys[1]).toBeLessThan(ys[0]!); // -1 is drawn above -5
  });
});

describe('barPlot and multiPanel', () => {
  it('draws one bar per finite value with labels, including negatives', () => {
    const svg = barPlot({
      title: 'accuracy',
      categories: ['easy', 'hard <x>'],
      series: [
        { name: 'no latents', values: [0.9, 0.2] },
        { name: 'latents', values: [0.95, NaN] },
      ],
    });
    assertWellFormed(svg);
    assertFiniteNumbers(svg);
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#/g)];
    expect(bars.length).toBe(3 + 2); // three bars + two legend swatches
    expect(svg).toContain('hard &lt;x&gt;');
    expect(svg).toContain('>0.95</text>');
    const neg = barPlot({ categories: ['a', 'b'], series: [{ name: 'd', values: [-2, 3] }] });
    assertWellFormed(neg);
    assertFiniteNumbers(neg);
    assertWellFormed(barPlot({ categories: [], series: [] }));
  });

  it('lays panels out in a grid as one well-formed SVG', () => {
    const a = linePlot({
      series: [
        {
          name: 'a',
          points: [
            [0, 1],
            [1, 2],
          ],
        },
      ],
      width: 300,
      height: 200,
    });
    const b = barPlot({ categories: ['x'], series: [{ name: 'b', values: [1] }], width: 200, height: 250 });
    const svg = multiPanel([a, b, a], 2, { title: 'report & co', gap: 10 });
    assertWellFormed(svg);
    assertFiniteNumbers(svg);
    expect([...svg.matchAll(/<svg /g)].length).toBe(4);
    // Width: gap + 300 + gap + 200 + gap; height: title 34 + gap + 250 + gap + 200 + gap.
    expect(svg).toMatch(/^<svg [^>]*width="530" height="514"/);
    expect(svg).toContain('<svg x="320" y="44"');
    expect(svg).toContain('<svg x="10" y="304"');
    expect(() => multiPanel(['<g/>'], 1)).toThrow(/panel 0/);
  });

  it('escapeXml escapes the five XML specials', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });
});
