// The demo's training loop, in a Web Worker so the page stays responsive while WebGPU / gpu.js / WASM kernels run.
// It uses the built package (`latentlm` is dist/browser.js, see build.mjs) exactly as src/cli/train-main.ts drives the
// CLI: a backend, the embedded default model, a Hub id or an HF directory URL, synthetic problems, Phase1Trainer with
// `evaluate` / `trainStep`; plus `generate` for questions typed on the page.
// Protocol (see main.ts): in  {type:'start', cfg} | {type:'stop'} | {type:'ask', question}
//                         out {type:'status'|'ready'|'step'|'eval'|'answer'|'done'|'error', ...}
import {
  createBackend,
  generate,
  loadData,
  loadDefaultModel,
  loadModel,
  LatentDecoder,
  Phase1Trainer,
  reward,
  type Backend,
  type BackendName,
  type EvalRecord,
  type ModelTokenizer,
  type Phase1Options,
  type Qwen2,
  type StepRecord,
} from 'latentlm';

export interface DemoConfig {
  backend: BackendName;
  /**
   * '' = the embedded default model; else a Hub id (`Qwen/Qwen2-0.5B[@rev]`, fetched from huggingface.co and kept in
   * the Cache API) or an HF directory URL (config.json + model.safetensors [+ vocab-map.json]).
   */
  modelUrl: string;
  mode: 'full' | 'two-trunk';
  /** How a latent's hidden state re-enters: as is, or scaled to the typical token-embedding norm. */
  feedback: 'identity' | 'scaled';
  k: number;
  steps: number;
  batch: number;
  lr: number;
  evalEvery: number;
  evalRows: number;
  /** Held-out problems answered by generation at the final evaluation (accuracy with and without latents). */
  genRows: number;
  seed: number;
}

export type WorkerOut =
  | { type: 'status'; text: string }
  | {
      type: 'ready';
      backend: { name: string; info: string };
      model: { source: string; layers: number; hidden: number; vocab: number; params: number };
      data: { source: string; train: number; test: number };
      questions: string[];
    }
  | { type: 'step'; rec: StepRecord; seconds: number }
  | { type: 'eval'; rec: EvalRecord }
  | { type: 'answer'; question: string; text: string; spans: { count: number; nearest: string[][] }[]; tokens: number; seconds: number }
  | { type: 'done'; stopped: boolean; steps: number; seconds: number }
  | { type: 'error'; message: string };

const post = (m: WorkerOut) => (self as unknown as Worker).postMessage(m);

interface Session {
  be: Backend;
  model: Qwen2;
  tok: ModelTokenizer;
  trainer: Phase1Trainer;
  cfg: DemoConfig;
  decoder?: LatentDecoder;
}

let session: Session | null = null;
let busy = false;
let stopRequested = false;
const questions: string[] = [];

// Yields to the event loop so 'stop' and 'ask' messages are seen between steps (kernels on the wasm and gpu.js
// backends are synchronous, and awaiting resolved promises never lets a message in).
const tick = () => new Promise<void>((r) => setTimeout(r, 0));

function destroy() {
  if (!session) return;
  try {
    session.model.destroy();
    session.be.destroy();
  } catch {
    // a lost device cannot be destroyed twice; nothing to release
  }
  session = null;
}

async function start(cfg: DemoConfig) {
  destroy();
  stopRequested = false;
  const t0 = performance.now();
  post({ type: 'status', text: `creating the ${cfg.backend} backend…` });
  const be = await createBackend({ prefer: cfg.backend, log: (l) => post({ type: 'status', text: l }) });
  post({ type: 'status', text: `loading ${cfg.modelUrl ? cfg.modelUrl : 'the embedded default model'}…` });
  const { model, tok, source } = cfg.modelUrl ? await loadModel(be, cfg.modelUrl) : await loadDefaultModel(be);
  const data = await loadData(undefined, { seed: cfg.seed, trainCount: 2000, testCount: Math.max(64, cfg.evalRows, cfg.genRows) });
  const marker = tok.encode('<<');
  const opts: Phase1Options = {
    mode: cfg.mode,
    feedback: cfg.feedback,
    condition: cfg.k === 0 ? 'none' : 'latent',
    k: cfg.k,
    steps: cfg.steps,
    batchSize: cfg.batch,
    lr: cfg.lr,
    warmupSteps: Math.min(20, Math.floor(cfg.steps / 10)),
    markerInit: marker.length === 1 ? { kind: 'token', id: marker[0] } : { kind: 'mean' },
    evalEvery: cfg.evalEvery,
    evalRows: cfg.evalRows,
    genRows: cfg.genRows,
    maxNewTokens: 96,
    seed: cfg.seed,
    eosId: tok.eosId,
    maxLen: 512,
    reward: (c, g) => reward(c, g),
    tokenText: (id) => tok.tokenText(id),
    decodeIds: tok.vocabSize < 5000 ? Array.from({ length: model.V }, (_, i) => i) : undefined,
  };
  const trainer = new Phase1Trainer(model, tok, data.train, data.test, opts);
  session = { be, model, tok, trainer, cfg };
  questions.length = 0;
  questions.push(...data.test.slice(0, 5).map((r) => r.question));
  let params = 0;
  for (const t of model.params.values()) params += t.size;
  post({
    type: 'ready',
    backend: { name: be.name, info: be.info },
    model: { source, layers: model.L, hidden: model.H, vocab: model.V, params },
    data: { source: data.source, train: data.train.length, test: data.test.length },
    questions: [...questions],
  });

  post({ type: 'status', text: 'evaluating before training…' });
  await trainer.init();
  post({ type: 'eval', rec: await trainer.evaluate(false) });
  let stopped = false;
  while (trainer.step < cfg.steps) {
    await tick();
    await drainQuestions();
    if (stopRequested) {
      stopped = true;
      break;
    }
    const s0 = performance.now();
    const rec = await trainer.trainStep();
    post({ type: 'step', rec, seconds: (performance.now() - s0) / 1000 });
    const last = trainer.step === cfg.steps;
    if (cfg.evalEvery > 0 && trainer.step % cfg.evalEvery === 0 && !last) {
      post({ type: 'status', text: `evaluating at step ${trainer.step}…` });
      post({ type: 'eval', rec: await trainer.evaluate(false) });
    }
  }
  if (!stopped) {
    post({ type: 'status', text: cfg.genRows ? `final evaluation (answering ${cfg.genRows} held-out problems)…` : 'final evaluation…' });
    post({ type: 'eval', rec: await trainer.evaluate(cfg.genRows > 0) });
  }
  post({ type: 'done', stopped, steps: trainer.step, seconds: (performance.now() - t0) / 1000 });
}

const asked: string[] = [];

async function drainQuestions() {
  while (asked.length && session) await answer(asked.shift()!);
}

async function answer(question: string) {
  const s = session!;
  const t0 = performance.now();
  const g = await generate(s.model, s.tok, question.trim() + '\n', {
    maxNewTokens: 96,
    condition: s.cfg.k === 0 ? 'none' : 'latent',
    startHead: s.cfg.k ? s.trainer.startHead : null,
    endHead: s.cfg.k ? s.trainer.endHead : null,
    latentsPerSpan: s.cfg.k || 1,
    maxLatents: 8,
    eosId: s.tok.eosId,
  });
  // what each latent of each span is "near" in the vocabulary: cosine against the input embeddings (re-read after
  // training steps for small models; a large model's table is read once)
  if (!s.decoder || s.model.V * s.model.H < 4e6) s.decoder = await LatentDecoder.create(s.model);
  const ids = s.tok.vocabSize < 5000 ? Array.from({ length: s.model.V }, (_, i) => i) : undefined;
  const spans = g.spans.map((sp) => ({
    count: sp.count,
    nearest: sp.vectors.map((v) =>
      s.decoder!.decode(v, (id) => s.tok.tokenText(id), 3, ids).nearest.map((n) => `${JSON.stringify(n.token)} ${n.cos.toFixed(2)}`),
    ),
  }));
  post({ type: 'answer', question, text: g.text, spans, tokens: g.tokenIds.length, seconds: (performance.now() - t0) / 1000 });
}

self.onmessage = async (e: MessageEvent) => {
  const m = e.data as { type: 'start'; cfg: DemoConfig } | { type: 'stop' } | { type: 'ask'; question: string };
  try {
    if (m.type === 'stop') stopRequested = true;
    else if (m.type === 'ask') {
      if (!session) return post({ type: 'error', message: 'train (or at least load) a model first: press Train' });
      asked.push(m.question);
      // while training, the loop answers between steps; otherwise answer now (one at a time)
      if (!busy) {
        busy = true;
        try {
          await drainQuestions();
        } finally {
          busy = false;
        }
      }
    } else if (m.type === 'start') {
      if (busy) return post({ type: 'error', message: 'already running: press Stop first' });
      busy = true;
      try {
        await start(m.cfg);
      } finally {
        busy = false;
      }
    }
  } catch (err) {
    post({ type: 'error', message: (err as Error).message ?? String(err) });
  }
};
