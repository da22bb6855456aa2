// The demo page: controls, live plots (the package's own SVG `linePlot`), latent diagnostics and a question box.
// All compute happens in worker.ts; this thread only renders. `window.__latentlm` exposes the run's records
// (steps, evals, answers, errors) for the end-to-end test and for poking at from the console.
import { linePlot, type EvalRecord, type StepRecord } from 'latentlm';
import type { DemoConfig, WorkerOut } from './worker.js';

interface State {
  phase: 'idle' | 'loading' | 'training' | 'done' | 'error';
  backend?: { name: string; info: string };
  steps: StepRecord[];
  evals: EvalRecord[];
  answers: { question: string; text: string }[];
  errors: string[];
  t0: number;
}
const state: State = { phase: 'idle', steps: [], evals: [], answers: [], errors: [], t0: 0 };
(globalThis as unknown as { __latentlm: State }).__latentlm = state;

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;
const cfgForm = $<HTMLFormElement>('#cfg');
const askForm = $<HTMLFormElement>('#ask');
const statusEl = $('#status');
const trainBtn = $<HTMLButtonElement>('#train');
const stopBtn = $<HTMLButtonElement>('#stop');

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

// Query string presets (?backend=gpujs&model=URL&steps=8...) so a run can be linked or scripted.
const params = new URLSearchParams(location.search);
for (const [k, v] of params) {
  const el = cfgForm.elements.namedItem(k === 'model' ? 'modelUrl' : k) as HTMLInputElement | HTMLSelectElement | null;
  if (el) el.value = v;
  if (k === 'model') (cfgForm.elements.namedItem('model') as HTMLSelectElement).value = 'url';
}
const modelSel = cfgForm.elements.namedItem('model') as HTMLSelectElement;
const syncUrl = () => ($('label.url').hidden = modelSel.value !== 'url');
modelSel.addEventListener('change', syncUrl);
syncUrl();
// WebGPU is the default where the browser has it; gpu.js (WebGL2) otherwise.
if (!params.has('backend') && !('gpu' in navigator)) (cfgForm.elements.namedItem('backend') as HTMLSelectElement).value = 'gpujs';

function readConfig(): DemoConfig {
  const f = new FormData(cfgForm);
  const num = (k: string) => Number(f.get(k));
  return {
    backend: f.get('backend') as DemoConfig['backend'],
    modelUrl: f.get('model') === 'url' ? String(f.get('modelUrl') ?? '').trim() : '',
    mode: f.get('mode') as DemoConfig['mode'],
    feedback: f.get('feedback') as DemoConfig['feedback'],
    k: num('k'),
    steps: num('steps'),
    batch: num('batch'),
    lr: num('lr'),
    evalEvery: num('evalEvery'),
    evalRows: num('evalRows'),
    genRows: num('genRows'),
    seed: 0,
  };
}

let worker: Worker | null = null;
function getWorker(): Worker {
  if (worker) return worker;
  worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (e: MessageEvent<WorkerOut>) => onMessage(e.data);
  worker.onerror = (e) => fail(`worker error: ${e.message}`);
  return worker;
}

function setStatus(text: string, error = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', error);
}

function fail(message: string) {
  state.errors.push(message);
  state.phase = state.phase === 'training' || state.phase === 'loading' ? 'error' : state.phase;
  setStatus(`error: ${message}`, true);
  trainBtn.disabled = false;
  stopBtn.disabled = true;
}

cfgForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const cfg = readConfig();
  if (modelSel.value === 'url' && !cfg.modelUrl)
    return setStatus('enter a Hub id (Qwen/Qwen2-0.5B) or the URL of an HF model directory', true);
  Object.assign(state, { phase: 'loading', steps: [], evals: [], t0: performance.now(), backend: undefined });
  $('#facts').innerHTML = '';
  render();
  trainBtn.disabled = true;
  stopBtn.disabled = false;
  getWorker().postMessage({ type: 'start', cfg });
});
stopBtn.addEventListener('click', () => {
  worker?.postMessage({ type: 'stop' });
  stopBtn.disabled = true;
  setStatus('stopping after this step…');
});
askForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = String(new FormData(askForm).get('question') ?? '').trim();
  if (!q) return;
  if (!worker) return setStatus('press Train first: the model lives in the worker', true);
  $<HTMLButtonElement>('#ask-btn').disabled = true;
  worker.postMessage({ type: 'ask', question: q });
});

function onMessage(m: WorkerOut) {
  switch (m.type) {
    case 'status':
      setStatus(m.text);
      break;
    case 'ready': {
      state.backend = m.backend;
      state.phase = 'training';
      const facts: [string, string][] = [
        ['backend', `${m.backend.name} — ${m.backend.info}`],
        [
          'model',
          `${m.model.source}: ${m.model.layers} layers, hidden ${m.model.hidden}, vocabulary ${m.model.vocab}, ${(m.model.params / 1e6).toFixed(2)} M parameters`,
        ],
        ['data', `${m.data.source}: ${m.data.train} training / ${m.data.test} held-out problems`],
      ];
      if (m.backend.name === 'webgpu' && /swiftshader|llvmpipe|lavapipe|software/i.test(m.backend.info))
        facts.push(['note', 'this WebGPU adapter is a software renderer: WebAssembly SIMD is usually several times faster here']);
      $('#facts').innerHTML = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
      const ta = askForm.elements.namedItem('question') as HTMLTextAreaElement;
      if (!ta.value && m.questions[0]) ta.value = m.questions[0];
      break;
    }
    case 'step':
      state.steps.push(m.rec);
      setStatus(`step ${m.rec.step}: loss ${fmt(m.rec.loss)}, ${Math.round(m.rec.tokPerSec)} tokens/s, ${m.seconds.toFixed(2)} s`);
      render();
      break;
    case 'eval':
      state.evals.push(m.rec);
      render();
      break;
    case 'answer':
      state.answers.push({ question: m.question, text: m.text });
      showAnswer(m);
      $<HTMLButtonElement>('#ask-btn').disabled = false;
      break;
    case 'done':
      state.phase = 'done';
      setStatus(`${m.stopped ? 'stopped' : 'done'}: ${m.steps} steps in ${m.seconds.toFixed(1)} s. Ask the model a question below.`);
      trainBtn.disabled = false;
      stopBtn.disabled = true;
      break;
    case 'error':
      $<HTMLButtonElement>('#ask-btn').disabled = false;
      fail(m.message);
      break;
  }
}

function render() {
  const steps = state.steps,
    evals = state.evals;
  const last = steps[steps.length - 1],
    lastEval = evals[evals.length - 1];
  $('#stat-step').textContent = last ? String(last.step) : '–';
  $('#stat-loss').textContent = fmt(last?.loss);
  $('#stat-test').textContent = fmt(lastEval?.testLoss);
  const gap = lastEval?.usage.gapZeroed;
  $('#stat-gap').textContent =
    gap === undefined || !Number.isFinite(gap) ? '–' : Math.abs(gap) < 5e-4 ? '0.000' : (gap > 0 ? '+' : '') + fmt(gap);
  $('#stat-tps').textContent = last ? String(Math.round(last.tokPerSec)) : '–';
  const acc = [...evals].reverse().find((e) => e.accuracy !== undefined);
  $('#stat-acc').textContent = acc
    ? `${fmt(acc.accuracy! * 100, 0)}%${acc.accuracyNoLatents !== undefined ? ` (${fmt(acc.accuracyNoLatents * 100, 0)}% without)` : ''}`
    : '–';

  $('#plot-loss').innerHTML = linePlot({
    title: 'Loss',
    xLabel: 'step',
    yLabel: 'cross-entropy',
    width: 620,
    height: 320,
    series: [
      { name: 'train', points: steps.map((s) => [s.step, s.loss] as const) },
      { name: 'test', points: evals.map((e) => [e.step, e.testLoss] as const) },
      { name: 'test, after breakpoints', points: evals.map((e) => [e.step, e.postBreakLoss] as const), dashed: true },
    ],
  });
  $('#plot-gap').innerHTML = linePlot({
    title: 'Latent-usage gap',
    xLabel: 'step',
    yLabel: 'loss increase',
    width: 620,
    height: 320,
    series: [
      { name: 'zeroed', points: evals.map((e) => [e.step, e.usage.gapZeroed ?? NaN] as const) },
      { name: 'swapped', points: evals.map((e) => [e.step, e.usage.gapSwapped ?? NaN] as const) },
      { name: 'removed', points: evals.map((e) => [e.step, e.usage.gapRemoved ?? NaN] as const) },
    ],
  });

  const withLatents = [...evals].reverse().find((e) => e.decoded?.length);
  const tbody = $('#latents tbody');
  if (withLatents) {
    $('#latents-step').textContent = `(evaluation at step ${withLatents.step})`;
    $('#typical-norm').textContent = fmt(withLatents.typicalEmbeddingNorm, 2);
    // whitespace made visible: a leading space is how BPE marks a word start
    const shown = (t: string) => JSON.stringify(t).slice(1, -1).replace(/ /g, '␣').replace(/\\n/g, '⏎') || '∅';
    const chip = (t: string, v: string) => `<span class="tok">${esc(shown(t))}${v ? `<i>${esc(v)}</i>` : ''}</span>`;
    tbody.innerHTML = withLatents
      .decoded!.map(
        (d) =>
          `<tr><td>${d.example + 1}</td><td>${d.span + 1}</td><td>${d.latent + 1}</td><td>${fmt(d.d.norm, 2)}</td>` +
          `<td>${d.d.nearest.map((n) => chip(n.token, n.cos.toFixed(2))).join('')}</td><td>${d.d.lmTop.map((n) => chip(n.token, '')).join('')}</td></tr>`,
      )
      .join('');
  } else {
    $('#latents-step').textContent = '';
    tbody.innerHTML = `<tr><td colspan="6" class="note">${evals.length ? 'no latents in this run (k = 0)' : 'appears after the first evaluation'}</td></tr>`;
  }

  const withSamples = [...evals].reverse().find((e) => e.samples?.length);
  $('#samples').innerHTML = withSamples
    ? withSamples
        .samples!.map(
          (s) =>
            `<div class="sample"><div class="q">${esc(s.question)}</div><div class="a">${markLatents(s.text)}</div>` +
            `<div class="${s.reward ? 'ok' : 'bad'}">gold ${esc(s.gold)}: ${s.reward ? 'right' : 'wrong'}</div></div>`,
        )
        .join('')
    : '<p class="note">The final evaluation answers held-out problems with and without latents.</p>';
}

/** The generator writes latent spans as ⟨k latents⟩; show them as marked chips (hover: what they decode to). */
function markLatents(text: string, spans?: { count: number; nearest: string[][] }[]): string {
  let i = 0;
  return text
    .split(/(⟨\d+ latents?⟩)/)
    .map((part) => {
      if (!/^⟨\d+ latents?⟩$/.test(part)) return esc(part);
      const sp = spans?.[i++];
      const title = sp ? sp.nearest.map((n, j) => `latent ${j + 1}: ${n.join(', ')}`).join('\n') : 'a span of latent tokens';
      return `<span class="latent" title="${esc(title)}">${esc(part)}</span>`;
    })
    .join('');
}

function showAnswer(m: Extract<WorkerOut, { type: 'answer' }>) {
  const div = document.createElement('div');
  div.className = 'answer';
  const nLat = m.spans.reduce((a, s) => a + s.count, 0);
  div.innerHTML =
    `<div class="q">${esc(m.question)}</div><div class="a">${markLatents(m.text, m.spans)}</div>` +
    `<div class="meta">${m.tokens} tokens, ${m.spans.length} latent span${m.spans.length === 1 ? '' : 's'} (${nLat} latents), ${m.seconds.toFixed(1)} s. Hover a span to see its nearest tokens.</div>`;
  $('#answers').prepend(div);
}

window.addEventListener('error', (e) => state.errors.push(`page error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => state.errors.push(`unhandled rejection: ${String(e.reason)}`));
render();
