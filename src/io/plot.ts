// SVG plots built as plain strings (no DOM), so Node, Deno, Bun and the browser render byte-identical output.
// Used for training reports: loss curves (linePlot), small comparisons (barPlot), several panels in one file
// (multiPanel). Non-finite points become gaps, never NaN in the markup (which makes browsers drop the whole path).

export interface LineSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  dashed?: boolean;
  /** CSS colour; defaults to the palette colour for the series index. */
  color?: string;
}

export interface LinePlotOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: LineSeries[];
  /** Logarithmic y axis; points with y <= 0 are skipped (gaps). */
  logY?: boolean;
  width?: number;
  height?: number;
}

export interface BarSeries {
  name: string;
  /** One value per category; NaN/Infinity leave the bar out. */
  values: number[];
  color?: string;
  /** Optional interval per value, drawn as a whisker from lo to hi (e.g. a 95 % confidence interval); null: none. */
  errors?: ReadonlyArray<{ lo: number; hi: number } | null | undefined>;
}

export interface BarPlotOptions {
  title?: string;
  yLabel?: string;
  categories: string[];
  series: BarSeries[];
  width?: number;
  height?: number;
  /** With all values >= 0, the y axis reaches at least this high (e.g. 1 for accuracies that may all be 0). */
  minTop?: number;
  /** Print each bar's value above it (default true). */
  valueLabels?: boolean;
}

/** Tableau 10: distinct, colour-blind-friendlier than the CSS named colours. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Fixed-precision coordinate (keeps files small and free of 1e-17 noise). */
function n(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** Heckbert's "nice numbers": 1, 2, 5 or 10 times a power of ten, near `x`. */
function niceNum(x: number, round: boolean): number {
  const e = Math.floor(Math.log10(x));
  const f = x / 10 ** e;
  let nf: number;
  if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * 10 ** e;
}

export interface Ticks {
  /** Tick values, ascending; the first and last are the axis bounds. */
  values: number[];
  /** Labels, same order. */
  labels: string[];
}

/** Rounds to the step's precision so 0.1+0.2 style noise never reaches a label. */
function snap(v: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number((Math.round(v / step) * step).toFixed(Math.min(20, decimals)));
}

/** A tick label precise enough to tell ticks `step` apart, without float noise: 0.0013, 2.5e-5, 1.5e6. */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const digits = Math.max(0, Math.min(15, Math.floor(Math.log10(a)) - Math.floor(Math.log10(Math.abs(step)) + 1e-9)));
    const [m, e] = v.toExponential(digits).split('e');
    const mant = m!.includes('.') ? m!.replace(/\.?0+$/, '') : m!;
    return `${mant}e${Number(e)}`;
  }
  const decimals = Math.max(0, Math.ceil(-Math.log10(Math.abs(step)) - 1e-9));
  return v.toFixed(Math.min(20, decimals));
}

/**
 * About `target` nice linear ticks covering [min, max] (expanded outward to nice bounds). A degenerate range (one
 * value) is widened around the value so it still gets a readable axis.
 */
export function niceTicks(min: number, max: number, target = 5): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    min = 0;
    max = 1;
  }
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const range = niceNum(max - min, false);
  const step = niceNum(range / Math.max(1, target - 1), true);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const values: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) values.push(snap(lo + i * step, step));
  return { values, labels: values.map((v) => formatTick(v, step)) };
}

/** Log-axis ticks: powers of ten (every k-th decade when there are many; 1-2-5 steps within a single decade). */
export function logTicks(min: number, max: number): Ticks {
  if (!(min > 0) || !Number.isFinite(min)) min = 1;
  if (!(max > 0) || !Number.isFinite(max)) max = min * 10;
  if (min > max) [min, max] = [max, min];
  let e0 = Math.floor(Math.log10(min) + 1e-9);
  let e1 = Math.ceil(Math.log10(max) - 1e-9);
  if (e1 === e0) e1 = e0 + 1;
  const decades = e1 - e0;
  const values: number[] = [];
  if (decades <= 2) {
    // Few decades: 1, 2, 5 per decade, trimmed to the data (keeping one tick either side of it).
    const all: number[] = [];
    for (let e = e0; e <= e1; e++) for (const m of [1, 2, 5]) all.push(Number((m * 10 ** e).toPrecision(12)));
    let i0 = all.findIndex((v) => v > min * (1 + 1e-9)) - 1;
    let i1 = all.findIndex((v) => v >= max * (1 - 1e-9));
    if (i0 < 0) i0 = 0;
    if (i1 < 0) i1 = all.length - 1;
    values.push(...all.slice(i0, i1 + 1));
  } else {
    const every = Math.ceil(decades / 8);
    e0 = Math.floor(e0 / every) * every;
    e1 = Math.ceil(e1 / every) * every;
    for (let e = e0; e <= e1; e += every) values.push(Number((10 ** e).toPrecision(12)));
  }
  // Powers of ten from 1e4 / 1e-4 outward read better as "1e4" on a log axis ("10000" next to "1e5" looks odd).
  const label = (v: number) => {
    const e = Math.log10(v);
    return Number.isInteger(Math.round(e * 1e9) / 1e9) && Math.abs(e) >= 4 ? `1e${Math.round(e)}` : formatTick(v, v);
  };
  return { values, labels: values.map(label) };
}

function textWidth(s: string, size = 12): number {
  return s.length * size * 0.6; // rough average glyph width for Helvetica/Arial; only used for layout
}

function frame(width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`,
    ...body,
    '</svg>',
  ].join('\n');
}

interface Layout {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function titleAndLabels(o: { title?: string; xLabel?: string; yLabel?: string }, width: number, height: number, L: Layout): string[] {
  const out: string[] = [];
  if (o.title)
    out.push(
      `<text x="${n(width / 2)}" y="20" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${escapeXml(o.title)}</text>`,
    );
  if (o.xLabel)
    out.push(
      `<text x="${n((L.left + width - L.right) / 2)}" y="${n(height - L.bottom + 36)}" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(o.xLabel)}</text>`,
    );
  if (o.yLabel) {
    const cy = (L.top + height - L.bottom) / 2;
    out.push(
      `<text x="14" y="${n(cy)}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${n(cy)})" ${FONT}>${escapeXml(o.yLabel)}</text>`,
    );
  }
  return out;
}

function legend(items: { name: string; color: string; dashed?: boolean; swatch: 'line' | 'box' }[], x: number, y: number): string[] {
  const out: string[] = [];
  items.forEach((it, i) => {
    const yy = y + i * 18;
    if (it.swatch === 'line') {
      out.push(
        `<line x1="${n(x)}" y1="${n(yy)}" x2="${n(x + 22)}" y2="${n(yy)}" stroke="${escapeXml(it.color)}" stroke-width="2.5"${it.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    } else {
      out.push(`<rect x="${n(x + 5)}" y="${n(yy - 6)}" width="12" height="12" fill="${escapeXml(it.color)}"/>`);
    }
    out.push(`<text x="${n(x + 28)}" y="${n(yy + 4)}" font-size="12" ${FONT}>${escapeXml(it.name)}</text>`);
  });
  return out;
}

/** A horizontal grid line and a right-aligned tick label at each y tick (line and bar plots draw the same y axis). */
function pushYGrid(body: string[], yt: Ticks, sy: (y: number) => number, left: number, pw: number): void {
  for (const [i, v] of yt.values.entries()) {
    const y = sy(v);
    body.push(`<line x1="${n(left)}" y1="${n(y)}" x2="${n(left + pw)}" y2="${n(y)}" stroke="#e5e5e5"/>`);
    body.push(
      `<text x="${n(left - 6)}" y="${n(y + 4)}" text-anchor="end" font-size="11" fill="#444" ${FONT}>${escapeXml(yt.labels[i]!)}</text>`,
    );
  }
}

/** Line plot. Non-finite points (and y <= 0 with logY) split a line into pieces; an isolated point is drawn as a dot. */
export function linePlot(o: LinePlotOptions): string {
  const width = o.width ?? 640,
    height = o.height ?? 400;
  const logY = !!o.logY;
  const ok = (p: readonly [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!logY || p[1] > 0);
  const pts = o.series.flatMap((s) => s.points.filter(ok));
  let xMin = Infinity,
    xMax = -Infinity,
    yMin = Infinity,
    yMax = -Infinity;
  for (const [x, y] of pts) {
    if (x < xMin) xMin = x;
    if (x > xMax) xMax = x;
    if (y < yMin) yMin = y;
    if (y > yMax) yMax = y;
  }
  const empty = pts.length === 0;
  const xt = empty ? niceTicks(0, 1) : niceTicks(xMin, xMax, Math.max(3, Math.round(width / 110)));
  const yt = logY
    ? empty
      ? logTicks(1, 10)
      : logTicks(yMin, yMax)
    : empty
      ? niceTicks(0, 1)
      : niceTicks(yMin, yMax, Math.max(3, Math.round(height / 70)));

  // Legend to the right of the plot, or below it when the names are long enough to squeeze the plot area.
  const legendW = o.series.length ? Math.max(...o.series.map((s) => textWidth(s.name))) + 44 : 0;
  const legendBelow = legendW > width * 0.28;
  const yLabelW = Math.max(...yt.labels.map((l) => textWidth(l, 11)));
  const L: Layout = {
    left: 26 + yLabelW + (o.yLabel ? 10 : 0),
    right: 16 + (legendBelow ? 0 : legendW),
    top: o.title ? 36 : 14,
    bottom: (o.xLabel ? 48 : 32) + (legendBelow ? 18 * o.series.length + 4 : 0),
  };
  const pw = Math.max(10, width - L.left - L.right),
    ph = Math.max(10, height - L.top - L.bottom);
  const [x0, x1] = [xt.values[0]!, xt.values[xt.values.length - 1]!];
  const [y0, y1] = [yt.values[0]!, yt.values[yt.values.length - 1]!];
  const fy = logY ? (y: number) => Math.log10(y) : (y: number) => y;
  const sx = (x: number) => L.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => L.top + ph - ((fy(y) - fy(y0)) / (fy(y1) - fy(y0))) * ph;

  const body: string[] = [];
  // Grid and tick labels.
  pushYGrid(body, yt, sy, L.left, pw);
  for (const [i, v] of xt.values.entries()) {
    const x = sx(v);
    body.push(`<line x1="${n(x)}" y1="${n(L.top)}" x2="${n(x)}" y2="${n(L.top + ph)}" stroke="#f0f0f0"/>`);
    body.push(
      `<text x="${n(x)}" y="${n(L.top + ph + 16)}" text-anchor="middle" font-size="11" fill="#444" ${FONT}>${escapeXml(xt.labels[i]!)}</text>`,
    );
  }
  body.push(`<rect x="${n(L.left)}" y="${n(L.top)}" width="${n(pw)}" height="${n(ph)}" fill="none" stroke="#888"/>`);

  o.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length]!;
    // Split into runs of drawable points.
    const runs: (readonly [number, number])[][] = [];
    let cur: (readonly [number, number])[] = [];
    for (const p of s.points) {
      if (ok(p)) cur.push(p);
      else if (cur.length) {
        runs.push(cur);
        cur = [];
      }
    }
    if (cur.length) runs.push(cur);
    for (const run of runs) {
      if (run.length === 1) {
        body.push(`<circle cx="${n(sx(run[0]![0]))}" cy="${n(sy(run[0]![1]))}" r="3" fill="${escapeXml(color)}"/>`);
      } else {
        const d = run.map((p, i) => `${i ? 'L' : 'M'}${n(sx(p[0]))} ${n(sy(p[1]))}`).join(' ');
        body.push(
          `<path d="${d}" fill="none" stroke="${escapeXml(color)}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
        );
      }
    }
  });
  if (empty)
    body.push(
      `<text x="${n(L.left + pw / 2)}" y="${n(L.top + ph / 2)}" text-anchor="middle" font-size="13" fill="#999" ${FONT}>no data</text>`,
    );

  const items = o.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length]!,
    dashed: s.dashed,
    swatch: 'line' as const,
  }));
  if (legendBelow) body.push(...legend(items, L.left, L.top + ph + (o.xLabel ? 54 : 36)));
  else body.push(...legend(items, width - L.right + 12, L.top + 10));
  body.push(...titleAndLabels(o, width, height, L));
  return frame(width, height, body);
}

/** Value label for a bar: 3 significant digits, no float noise. */
function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return formatTick(v, Math.abs(v) / 100);
  return String(Number(v.toPrecision(3)));
}

/** Grouped bar chart: one group per category, one bar per series. The y axis always includes 0. */
export function barPlot(o: BarPlotOptions): string {
  const width = o.width ?? 480,
    height = o.height ?? 320;
  const whiskerEnds = o.series.flatMap((s) => (s.errors ?? []).flatMap((e) => (e ? [e.lo, e.hi] : [])));
  const vals = o.series.flatMap((s) => s.values.filter(Number.isFinite));
  const extent = [...vals, ...whiskerEnds.filter(Number.isFinite)];
  const lo = Math.min(0, ...extent),
    hi = Math.max(0, ...extent, lo === 0 ? (o.minTop ?? 0) : 0);
  const yt = vals.length && hi > lo ? niceTicks(lo, hi, Math.max(3, Math.round(height / 70))) : niceTicks(0, 1);
  const legendW = o.series.length > 1 ? Math.max(...o.series.map((s) => textWidth(s.name))) + 44 : 0;
  const yLabelW = Math.max(...yt.labels.map((l) => textWidth(l, 11)));
  const L: Layout = { left: 26 + yLabelW + (o.yLabel ? 10 : 0), right: 16 + legendW, top: o.title ? 36 : 14, bottom: 32 };
  const pw = Math.max(10, width - L.left - L.right),
    ph = Math.max(10, height - L.top - L.bottom);
  const [y0, y1] = [yt.values[0]!, yt.values[yt.values.length - 1]!];
  const sy = (y: number) => L.top + ph - ((y - y0) / (y1 - y0)) * ph;

  const body: string[] = [];
  pushYGrid(body, yt, sy, L.left, pw);
  const nCat = Math.max(1, o.categories.length),
    nSer = Math.max(1, o.series.length);
  const groupW = pw / nCat;
  const barW = (groupW * 0.75) / nSer;
  o.categories.forEach((cat, ci) => {
    const gx = L.left + ci * groupW + groupW * 0.125;
    o.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === undefined || !Number.isFinite(v)) return;
      const color = s.color ?? PALETTE[si % PALETTE.length]!;
      const x = gx + si * barW;
      const top = sy(Math.max(v, 0)),
        bottom = sy(Math.min(v, 0));
      body.push(
        `<rect x="${n(x + 1)}" y="${n(top)}" width="${n(Math.max(1, barW - 2))}" height="${n(Math.max(0.5, bottom - top))}" fill="${escapeXml(color)}"/>`,
      );
      const err = s.errors?.[ci];
      const whisker = !!err && Number.isFinite(err.lo) && Number.isFinite(err.hi);
      if (whisker) {
        const cx = x + barW / 2,
          cap = Math.min(6, barW / 4),
          [ya, yb] = [sy(err.lo), sy(err.hi)];
        body.push(
          `<path d="M${n(cx)} ${n(ya)}V${n(yb)}M${n(cx - cap)} ${n(ya)}H${n(cx + cap)}M${n(cx - cap)} ${n(yb)}H${n(cx + cap)}" stroke="#222" stroke-width="1.2" fill="none"/>`,
        );
      }
      if (o.valueLabels !== false) {
        // above (below) the whisker too, so the label never sits on its line
        const ly =
          v >= 0
            ? Math.min(top, whisker ? sy(Math.max(err.lo, err.hi)) : top) - 4
            : Math.max(bottom, whisker ? sy(Math.min(err.lo, err.hi)) : bottom) + 13;
        body.push(
          `<text x="${n(x + barW / 2)}" y="${n(ly)}" text-anchor="middle" font-size="10" fill="#333" ${FONT}>${escapeXml(formatValue(v))}</text>`,
        );
      }
    });
    body.push(
      `<text x="${n(L.left + (ci + 0.5) * groupW)}" y="${n(L.top + ph + 18)}" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(cat)}</text>`,
    );
  });
  body.push(`<line x1="${n(L.left)}" y1="${n(sy(0))}" x2="${n(L.left + pw)}" y2="${n(sy(0))}" stroke="#555"/>`);
  body.push(`<rect x="${n(L.left)}" y="${n(L.top)}" width="${n(pw)}" height="${n(ph)}" fill="none" stroke="#888"/>`);
  if (!vals.length)
    body.push(
      `<text x="${n(L.left + pw / 2)}" y="${n(L.top + ph / 2)}" text-anchor="middle" font-size="13" fill="#999" ${FONT}>no data</text>`,
    );
  if (o.series.length > 1) {
    body.push(
      ...legend(
        o.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length]!, swatch: 'box' as const })),
        width - L.right + 12,
        L.top + 10,
      ),
    );
  }
  body.push(...titleAndLabels({ title: o.title, yLabel: o.yLabel }, width, height, L));
  return frame(width, height, body);
}

function svgSize(svg: string, index: number): { w: number; h: number } {
  const open = /<svg\b[^>]*>/.exec(svg);
  if (!open) throw new Error(`multiPanel: panel ${index} is not an <svg> document`);
  const w = /\swidth="([\d.]+)"/.exec(open[0]),
    h = /\sheight="([\d.]+)"/.exec(open[0]);
  if (!w || !h) throw new Error(`multiPanel: panel ${index} has no numeric width/height on its <svg> element`);
  return { w: Number(w[1]), h: Number(h[1]) };
}

/** Lays several SVGs (from linePlot/barPlot) out in a grid of `cols` columns as one SVG, e.g. a training report. */
export function multiPanel(svgs: string[], cols = 2, opts: { title?: string; gap?: number } = {}): string {
  const gap = opts.gap ?? 8;
  cols = Math.max(1, Math.min(Math.floor(cols), Math.max(1, svgs.length)));
  const sizes = svgs.map(svgSize);
  const rows = Math.ceil(svgs.length / cols);
  const colW = Array.from({ length: cols }, (_, c) => Math.max(0, ...sizes.filter((_, i) => i % cols === c).map((s) => s.w)));
  const rowH = Array.from({ length: rows }, (_, r) => Math.max(0, ...sizes.slice(r * cols, r * cols + cols).map((s) => s.h)));
  const top = opts.title ? 34 : 0;
  const width = Math.max(1, colW.reduce((a, b) => a + b, 0) + gap * (cols + 1));
  const height = Math.max(1, top + rowH.reduce((a, b) => a + b, 0) + gap * (rows + 1));
  const body: string[] = [];
  if (opts.title)
    body.push(
      `<text x="${n(width / 2)}" y="24" text-anchor="middle" font-size="18" font-weight="bold" ${FONT}>${escapeXml(opts.title)}</text>`,
    );
  svgs.forEach((svg, i) => {
    const c = i % cols,
      r = Math.floor(i / cols);
    const x = gap + colW.slice(0, c).reduce((a, b) => a + b, 0) + gap * c;
    const y = top + gap + rowH.slice(0, r).reduce((a, b) => a + b, 0) + gap * r;
    // A nested <svg> with x/y is a self-contained viewport: the panel's own coordinates stay valid.
    const inner = svg.replace(/^\s*(<\?xml[^>]*>\s*)?/, '').replace(/<svg\b/, `<svg x="${n(x)}" y="${n(y)}"`);
    body.push(inner);
  });
  return frame(width, height, body);
}
