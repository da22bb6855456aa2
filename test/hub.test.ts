// Models and data sets by Hub id, without the internet: a mock Hub on 127.0.0.1 in the Hub's URL layout (repo API,
// /resolve/ with ETag, X-Repo-Commit and Range, one gated file), and HF caches laid out as huggingface_hub writes them.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, mkdir, readFile, readlink, rm, stat, symlink, writeFile, readdir, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { expectedQwen2Tensors, loadHfCheckpoint, saveHfCheckpoint, type Qwen2Config } from '../src/model/hf.ts';
import { parseRepoId } from '../src/hub/id.ts';
import { loadHubDataset } from '../src/hub/dataset.ts';
import { cachedFetch, type CacheStorageLike } from '../src/hub/browser-cache.ts';
import { applyChatTemplate, loadData, loadModel } from '../src/setup/loaders.ts';
import { CpuBackend } from '../src/backend/cpu.ts';
import { Tokenizer as RustTokenizer } from '@anush008/tokenizers';

const MODEL = 'test-org/tiny-qwen2';
const DATASET = 'test-org/tiny-gsm8k';
const COMMIT = 'a'.repeat(40);
const DCOMMIT = 'b'.repeat(40);
const TOKEN = 'hf_testtoken';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Uint8Array) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

interface MockFile {
  bytes: Uint8Array;
  lfs: boolean;
  gated?: boolean;
}
interface Repo {
  commit: string;
  files: Map<string, MockFile>;
}

/** A mock Hub: records every request; `cutAfter` / `corrupt` make the next download of a file fail as asked. */
class MockHub {
  server!: Server;
  url = '';
  log: string[] = [];
  repos = new Map<string, Repo>();
  cutAfter = new Map<string, number>();
  corrupt = new Set<string>();

  async start() {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  stop() {
    this.server.closeAllConnections();
    return new Promise<void>((ok) => this.server.close(() => ok()));
  }

  /** A repo at a revision: 'main', its commit, or another branch registered as `id@branch`. */
  private find(id: string, rev: string): Repo | undefined {
    const branch = this.repos.get(`${id}@${rev}`);
    if (branch) return branch;
    for (const [key, repo] of this.repos) if ((key === id || key.startsWith(`${id}@`)) && repo.commit === rev) return repo;
    return rev === 'main' ? this.repos.get(id) : undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const u = new URL(req.url!, this.url);
    this.log.push(`${req.method} ${u.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const path = decodeURIComponent(u.pathname);
    let m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (m) {
      const repo = this.find(`${m[1] === 'models' ? '' : 'datasets/'}${m[2]}`, m[3]);
      if (!repo) return this.send(res, 404, { 'X-Error-Code': 'RepoNotFound' }, '{"error":"Repository not found"}');
      const body = {
        _id: 'x',
        id: m[2],
        sha: repo.commit,
        private: false,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: '2024-01-01T00:00:00.000Z',
        siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
      };
      return this.send(res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(body));
    }
    m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/paths-info\/(.+)$/.exec(path);
    if (m && req.method === 'POST') {
      const repo = this.find(`${m[1] === 'models' ? '' : 'datasets/'}${m[2]}`, m[3]);
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (!repo) return this.send(res, 404, { 'X-Error-Code': 'RevisionNotFound' }, '{"error":"Revision not found"}');
        const paths = (JSON.parse(body) as { paths: string[] }).paths;
        if (paths.some((p) => repo.files.get(p)?.gated) && req.headers.authorization !== `Bearer ${TOKEN}`)
          return this.send(res, 401, {}, '{"error":"Access to this repo is restricted"}');
        const out = paths
          .filter((p) => repo.files.has(p))
          .map((p) => {
            const f = repo.files.get(p)!;
            const lfs = f.lfs ? { oid: sha256(f.bytes), size: f.bytes.length, pointerSize: 134 } : undefined;
            return {
              type: 'file',
              path: p,
              oid: gitSha1(
                f.lfs
                  ? new TextEncoder().encode(
                      `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.bytes)}\nsize ${f.bytes.length}\n`,
                    )
                  : f.bytes,
              ),
              size: f.lfs ? 134 : f.bytes.length,
              lfs,
            };
          });
        this.send(res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(out));
      });
      return;
    }
    m = /^\/((?:datasets\/)?[^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repo = m ? this.find(m[1], m[2]) : undefined;
    const file = repo?.files.get(m![3]);
    if (!m || !file) return this.send(res, 404, { 'X-Error-Code': 'EntryNotFound' }, 'Entry not found');
    if (file.gated && req.headers.authorization !== `Bearer ${TOKEN}`)
      return this.send(res, 401, { 'X-Error-Code': 'GatedRepo' }, 'Access to this file is restricted');
    const etag = file.lfs ? sha256(file.bytes) : gitSha1(file.bytes);
    const key = `${m[1]}/${m[3]}`;
    let bytes = file.bytes;
    if (this.corrupt.has(key) && req.headers.range !== 'bytes=0-0') {
      this.corrupt.delete(key);
      bytes = new Uint8Array(bytes); // a copy (Buffer#slice would be a view)
      bytes[bytes.length >> 1] ^= 0xff;
    }
    const headers: Record<string, string> = {
      ETag: `"${etag}"`,
      'X-Repo-Commit': repo!.commit,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
    };
    if (file.lfs) headers['X-Linked-Etag'] = `"${etag}"`;
    let start = 0,
      end = bytes.length - 1,
      status = 200;
    const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (r) {
      start = Number(r[1]);
      end = r[2] ? Math.min(Number(r[2]), end) : end;
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${bytes.length}`;
    }
    const body = bytes.subarray(start, end + 1);
    headers['Content-Length'] = String(body.length);
    res.writeHead(status, headers);
    const cut = this.cutAfter.get(key);
    if (cut !== undefined && status === 200) {
      this.cutAfter.delete(key);
      res.write(body.subarray(0, cut), () => res.destroy()); // the connection drops mid-file
      return;
    }
    res.end(body);
  }
  private send(res: ServerResponse, status: number, headers: Record<string, string>, body: string) {
    res.writeHead(status, headers);
    res.end(body);
  }
}

const hub = new MockHub();
let tmp = '';
let modelDir = '';
const savedEnv = { ...process.env };

const tinyConfig = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: 300,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
} as Qwen2Config;

const ROWS = {
  train: [
    {
      question: 'Natalia sold 48 clips and then half as many. How many?',
      answer: 'She sold 48/2 = <<48/2=24>>24 more.\n48+24 = <<48+24=72>>72\n#### 72',
    },
    { question: 'Weng earns $12 an hour. How much for 3 hours?', answer: '12*3 = <<12*3=36>>36\n#### 36' },
  ],
  test: [{ question: 'Betty has 5 apples and eats 2. How many are left?', answer: '5-2 = <<5-2=3>>3\n#### 3' }],
};

function parquetOf(rows: { question: string; answer: string }[]): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'question', data: rows.map((r) => r.question), type: 'STRING' },
        { name: 'answer', data: rows.map((r) => r.answer), type: 'STRING' },
      ],
    }),
  );
}

/** GPT-2's bytes_to_unicode: the ByteLevel alphabet a byte-level BPE vocabulary is written in. */
function byteLevelChars(): string[] {
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : 256 + n++));
  }
  return out;
}

/**
 * A fine-tune's tokenizer.json: Qwen2's normalizer and pre-tokenizer, a 258-token byte-level vocabulary (256 bytes,
 * 'he', 'll'), Qwen2's three special tokens renumbered, and one extra added token a fine-tune introduced.
 */
function tinyTokenizerJson(): string {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const vocab: Record<string, number> = {};
  byteLevelChars().forEach((c, i) => (vocab[c] = i));
  vocab.he = 256;
  vocab.ll = 257;
  const added = (id: number, content: string, special: boolean) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: !special,
    special,
  });
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      added(258, '<|endoftext|>', true),
      added(259, '<|im_start|>', true),
      added(260, '<|im_end|>', true),
      added(261, '<think>', false),
    ],
    normalizer: { type: 'NFC' },
    // Qwen2's tokenizer.json pre-tokenizer, verbatim
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: 'Isolated',
          invert: false,
        },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: ['h e', 'l l'],
    },
  });
}

// Qwen2-Instruct's ChatML template (tokenizer_config.json)
const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// The fields a Qwen2.5 config.json adds over Qwen2's (same model_type 'qwen2').
const QWEN25_FIELDS = {
  attention_dropout: 0.0,
  bos_token_id: 258,
  eos_token_id: 258,
  hidden_act: 'silu',
  initializer_range: 0.02,
  max_window_layers: 1,
  rope_theta: 1000000.0,
  sliding_window: 128,
  use_cache: true,
  use_sliding_window: false,
  rope_scaling: null,
  transformers_version: '4.43.1',
};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'latentlm-hub-'));
  modelDir = join(tmp, 'src-model');
  const tensors = new Map<string, Float32Array>();
  let seed = 1;
  for (const [name, shape] of expectedQwen2Tensors(tinyConfig)) {
    const t = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < t.length; i++) t[i] = ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1;
    tensors.set(name, t);
  }
  await saveHfCheckpoint(modelDir, tinyConfig, tensors);
  const files = new Map<string, MockFile>();
  files.set('config.json', { bytes: await readFile(join(modelDir, 'config.json')), lfs: false });
  files.set('model.safetensors', { bytes: await readFile(join(modelDir, 'model.safetensors')), lfs: true });
  files.set('README.md', { bytes: new TextEncoder().encode('# tiny\n'), lfs: false });
  files.set('pytorch_model.bin', { bytes: new Uint8Array(10), lfs: true }); // never fetched: not a file the loader reads
  hub.repos.set(MODEL, { commit: COMMIT, files });
  hub.repos.set(`${MODEL}-gated`, {
    commit: COMMIT,
    files: new Map([...files].map(([k, v]) => [k, { ...v, gated: k === 'model.safetensors' }])),
  });
  hub.repos.set('test-org/tiny-qwen3', {
    commit: COMMIT,
    files: new Map([
      ['config.json', { bytes: new TextEncoder().encode(JSON.stringify({ ...tinyConfig, model_type: 'qwen3' })), lfs: false }],
      ['model.safetensors', files.get('model.safetensors')!],
    ]),
  });
  hub.repos.set(`datasets/${DATASET}`, {
    commit: DCOMMIT,
    files: new Map([
      ['README.md', { bytes: new TextEncoder().encode('# data\n'), lfs: false }],
      ['main/train-00000-of-00001.parquet', { bytes: parquetOf(ROWS.train), lfs: true }],
      ['main/test-00000-of-00001.parquet', { bytes: parquetOf(ROWS.test), lfs: true }],
      ['socratic/train-00000-of-00001.parquet', { bytes: parquetOf(ROWS.test), lfs: true }],
    ]),
  });
  const enc = new TextEncoder();
  for (const [name, vocab] of [
    ['tiny-qwen25-instruct', 300],
    ['tiny-qwen25-small-vocab', 260],
  ] as const) {
    const cfg = {
      ...JSON.parse(new TextDecoder().decode(files.get('config.json')!.bytes)),
      ...QWEN25_FIELDS,
      vocab_size: vocab,
      torch_dtype: 'bfloat16',
    };
    const dir = join(tmp, name);
    const t = new Map<string, Float32Array>();
    for (const [n, shape] of expectedQwen2Tensors(cfg))
      t.set(
        n,
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) =>
          n.endsWith('norm.weight') ? 1 : Math.sin(i * 0.37) * 0.05,
        ),
      );
    await saveHfCheckpoint(dir, cfg, t, { dtype: 'BF16' });
    hub.repos.set(`test-org/${name}`, {
      commit: COMMIT,
      files: new Map([
        ['config.json', { bytes: await readFile(join(dir, 'config.json')), lfs: false }],
        ['model.safetensors', { bytes: await readFile(join(dir, 'model.safetensors')), lfs: true }],
        ['tokenizer.json', { bytes: enc.encode(tinyTokenizerJson()), lfs: false }],
        [
          'tokenizer_config.json',
          { bytes: enc.encode(JSON.stringify({ chat_template: CHATML, eos_token: '<|im_end|>', bos_token: null })), lfs: false },
        ],
      ]),
    });
  }
  // the Hub's parquet conversion branch: <config>/<split>/0000.parquet
  hub.repos.set(`datasets/${DATASET}@refs/convert/parquet`, {
    commit: 'd'.repeat(40),
    files: new Map([
      ['main/train/0000.parquet', { bytes: parquetOf(ROWS.train), lfs: true }],
      ['main/test/0000.parquet', { bytes: parquetOf(ROWS.test), lfs: true }],
    ]),
  });
  await hub.start();
});

afterAll(async () => {
  process.env = savedEnv;
  await hub.stop();
  await rm(tmp, { recursive: true, force: true });
});

const opts = (cacheDir: string, extra: object = {}) => ({ hub: { endpoint: hub.url, cacheDir, ...extra } });

describe('hub ids', () => {
  it('parses org/name[@revision] and rejects paths and bad names', () => {
    expect(parseRepoId('Qwen/Qwen2-0.5B', 'model')).toEqual({ type: 'model', name: 'Qwen/Qwen2-0.5B', revision: 'main' });
    expect(parseRepoId('openai/gsm8k@refs/convert/parquet', 'dataset')).toEqual({
      type: 'dataset',
      name: 'openai/gsm8k',
      revision: 'refs/convert/parquet',
    });
    for (const bad of ['./a/b', '/abs/dir', 'a/b/c', 'a--x/b', 'a/b..c', 'runs', 'a/b@../x']) expect(parseRepoId(bad, 'model')).toBeNull();
  });
});

describe('models from a mock Hub', () => {
  it('downloads into the HF cache layout, reuses it, and loads the same tensors as the directory', async () => {
    const cache = join(tmp, 'cache1');
    hub.log = [];
    const ck = await loadHfCheckpoint(MODEL, opts(cache));
    const repoDir = join(cache, 'models--test-org--tiny-qwen2');
    expect(await readFile(join(repoDir, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    const weights = await readFile(join(modelDir, 'model.safetensors'));
    const link = await readlink(join(repoDir, 'snapshots', COMMIT, 'model.safetensors'));
    expect(link).toBe(`../../blobs/${sha256(weights)}`); // relative, as huggingface_hub writes it
    expect(await readlink(join(repoDir, 'snapshots', COMMIT, 'config.json'))).toBe(
      `../../blobs/${gitSha1(await readFile(join(modelDir, 'config.json')))}`,
    );
    expect((await readdir(join(repoDir, 'blobs'))).length).toBe(2); // README.md and pytorch_model.bin were not fetched
    const direct = await loadHfCheckpoint(modelDir);
    for (const [n, t] of direct.tensors) expect(ck.tensors.get(n)!.data).toEqual(t.data);
    // the endpoints @huggingface/hub calls, and ours
    expect(hub.log).toContain(`GET /api/models/${MODEL}/revision/main`);
    expect(hub.log).toContain(`POST /api/models/${MODEL}/paths-info/${COMMIT}`);
    expect(hub.log).toContain(`GET /${MODEL}/resolve/${COMMIT}/model.safetensors`);
    // second load: only the revision is asked for, nothing downloaded
    hub.log = [];
    await loadHfCheckpoint(`${MODEL}@main`, opts(cache));
    expect(hub.log).toEqual([`GET /api/models/${MODEL}/revision/main`]);
    // pinned to a commit that is cached: no request at all
    hub.log = [];
    await loadHfCheckpoint(`${MODEL}@${COMMIT}`, opts(cache));
    expect(hub.log).toEqual([]);
  });

  it('offline: a pre-filled huggingface_hub cache works with no request; missing files are named', async () => {
    const cache = join(tmp, 'cache-python');
    const repoDir = join(cache, 'models--test-org--tiny-qwen2');
    const commit = 'c'.repeat(40);
    await mkdir(join(repoDir, 'blobs'), { recursive: true });
    await mkdir(join(repoDir, 'snapshots', commit), { recursive: true });
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', 'main'), commit);
    for (const f of ['config.json', 'model.safetensors']) {
      const b = await readFile(join(modelDir, f));
      const blob = f.endsWith('.json') ? gitSha1(b) : sha256(b);
      await writeFile(join(repoDir, 'blobs', blob), b);
      if (f === 'config.json') await symlink(`../../blobs/${blob}`, join(repoDir, 'snapshots', commit, f));
    }
    hub.log = [];
    await expect(loadHfCheckpoint(MODEL, opts(cache, { offline: true }))).rejects.toThrow(
      /HF_HUB_OFFLINE is set.*lacks model\.safetensors/,
    );
    await symlink(
      `../../blobs/${sha256(await readFile(join(modelDir, 'model.safetensors')))}`,
      join(repoDir, 'snapshots', commit, 'model.safetensors'),
    );
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const ck = await loadHfCheckpoint(MODEL, { hub: { endpoint: hub.url, cacheDir: cache } });
      expect(ck.source).toBe(join(repoDir, 'snapshots', commit));
      await expect(loadHfCheckpoint('test-org/not-cached', { hub: { endpoint: hub.url, cacheDir: cache } })).rejects.toThrow(
        /test-org\/not-cached: HF_HUB_OFFLINE is set, and it is not in the cache \(no .*refs.main\)/,
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.log).toEqual([]);
    // online but the Hub unreachable: the cache, with a warning
    const warnings: string[] = [];
    const ck = await loadHfCheckpoint(MODEL, { hub: { endpoint: 'http://127.0.0.1:9', cacheDir: cache, log: (l) => warnings.push(l) } });
    expect(ck.source).toBe(join(repoDir, 'snapshots', commit));
    expect(warnings.join('\n')).toMatch(/http:\/\/127\.0\.0\.1:9 is unreachable .*using the cached test-org\/tiny-qwen2/);
  });

  it('an interrupted download resumes with a Range request', async () => {
    const cache = join(tmp, 'cache-resume');
    const key = `${MODEL}/model.safetensors`;
    hub.cutAfter.set(key, 3000);
    await expect(loadHfCheckpoint(MODEL, opts(cache))).rejects.toThrow(/model\.safetensors: download (interrupted|incomplete)/);
    const blob = join(cache, 'models--test-org--tiny-qwen2', 'blobs', sha256(await readFile(join(modelDir, 'model.safetensors'))));
    expect((await stat(`${blob}.incomplete`)).size).toBe(3000);
    await expect(stat(blob)).rejects.toThrow(); // no half blob under the real name
    hub.log = [];
    const ck = await loadHfCheckpoint(MODEL, opts(cache));
    expect(hub.log).toContain(`GET /${MODEL}/resolve/${COMMIT}/model.safetensors bytes=3000-`);
    expect(ck.tensors.size).toBeGreaterThan(0);
    await expect(stat(`${blob}.incomplete`)).rejects.toThrow();
  });

  it("a corrupted download is detected against the Hub's sha256 and not kept", async () => {
    const cache = join(tmp, 'cache-corrupt');
    hub.corrupt.add(`${MODEL}/model.safetensors`);
    await expect(loadHfCheckpoint(MODEL, opts(cache))).rejects.toThrow(
      /model\.safetensors: corrupted download: sha256 is [0-9a-f]{64}, the Hub's hash is [0-9a-f]{64}/,
    );
    const blobs = await readdir(join(cache, 'models--test-org--tiny-qwen2', 'blobs'));
    const good = sha256(await readFile(join(modelDir, 'model.safetensors')));
    expect(blobs.some((b) => b.startsWith(good))).toBe(false);
    await loadHfCheckpoint(MODEL, opts(cache)); // the next try downloads it cleanly
  });

  it('a truncated blob already in the cache is fetched again', async () => {
    const cache = join(tmp, 'cache-truncated');
    await loadHfCheckpoint(MODEL, opts(cache));
    const blob = join(cache, 'models--test-org--tiny-qwen2', 'blobs', sha256(await readFile(join(modelDir, 'model.safetensors'))));
    await rm(join(cache, 'models--test-org--tiny-qwen2', 'snapshots', COMMIT, 'model.safetensors'));
    await truncate(blob, 100);
    hub.log = [];
    const ck = await loadHfCheckpoint(MODEL, opts(cache));
    expect((await stat(blob)).size).toBe((await stat(join(modelDir, 'model.safetensors'))).size);
    expect(ck.tensors.size).toBeGreaterThan(0);
  });

  it('a gated file needs HF_TOKEN; unknown repos and architectures fail clearly', async () => {
    const cache = join(tmp, 'cache-gated');
    await expect(loadHfCheckpoint(`${MODEL}-gated`, opts(cache))).rejects.toThrow(
      /tiny-qwen2-gated: cannot get config\.json, model\.safetensors: HTTP 401: the repo is gated or private; set HF_TOKEN/,
    );
    process.env.HF_TOKEN = TOKEN;
    try {
      expect((await loadHfCheckpoint(`${MODEL}-gated`, opts(cache))).tensors.size).toBeGreaterThan(0);
    } finally {
      delete process.env.HF_TOKEN;
    }
    await expect(loadHfCheckpoint('test-org/missing', opts(cache))).rejects.toThrow(
      /test-org\/missing: cannot list the repo: not a local path, and not found on the Hub \(HTTP 404\)/,
    );
    hub.log = [];
    await expect(loadHfCheckpoint('test-org/tiny-qwen3', opts(cache))).rejects.toThrow(
      /config\.json: model_type "qwen3" is not supported .*q_norm\/k_norm/,
    );
    expect(hub.log.some((l) => l.includes('model.safetensors'))).toBe(false); // rejected before the weights were fetched
  });
});

describe('latentlm dump --model ID', () => {
  it('gives the same tensors as with the directory', async () => {
    const { dumpCommand } = await import('../src/cli/dump.ts');
    const { parseSafetensors } = await import('../src/io/safetensors.ts');
    await writeFile(join(tmp, 'case.json'), JSON.stringify({ ids: [1, 5, 9, 2], latent: [2] }));
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = join(tmp, 'cache-dump');
    try {
      expect(
        await dumpCommand.run([
          '--model',
          MODEL,
          '--case',
          join(tmp, 'case.json'),
          '--out',
          join(tmp, 'by-id.safetensors'),
          '--backend',
          'cpu',
        ]),
      ).toBe(0);
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
    }
    expect(
      await dumpCommand.run([
        '--model',
        modelDir,
        '--case',
        join(tmp, 'case.json'),
        '--out',
        join(tmp, 'by-dir.safetensors'),
        '--backend',
        'cpu',
      ]),
    ).toBe(0);
    const a = parseSafetensors(await readFile(join(tmp, 'by-id.safetensors')), 'a'),
      b = parseSafetensors(await readFile(join(tmp, 'by-dir.safetensors')), 'b');
    expect([...a.tensors.keys()].length).toBeGreaterThan(3);
    for (const [n, t] of b.tensors) expect(Buffer.from(a.tensors.get(n)!.data)).toEqual(Buffer.from(t.data));
  });
});

describe('data sets from a mock Hub', () => {
  it('reads the parquet splits of config main; --data with an id goes through loadData', async () => {
    const cache = join(tmp, 'cache-data');
    const ds = await loadHubDataset(parseRepoId(DATASET, 'dataset')!, ['train', 'test'], { endpoint: hub.url, cacheDir: cache });
    expect(ds.config).toBe('main');
    expect(ds.splits.train).toEqual(ROWS.train);
    expect(ds.splits.test).toEqual(ROWS.test);
    expect(await readFile(join(cache, 'datasets--test-org--tiny-gsm8k', 'refs', 'main'), 'utf8')).toBe(DCOMMIT);
    const soc = await loadHubDataset(parseRepoId(DATASET, 'dataset')!, ['train'], {
      endpoint: hub.url,
      cacheDir: cache,
      config: 'socratic',
    });
    expect(soc.splits.train).toEqual(ROWS.test);
    const conv = await loadHubDataset(parseRepoId(`${DATASET}@refs/convert/parquet`, 'dataset')!, ['train', 'test'], {
      endpoint: hub.url,
      cacheDir: cache,
    });
    expect(conv.splits).toEqual(ROWS);
    expect(await readFile(join(cache, 'datasets--test-org--tiny-gsm8k', 'refs', 'refs', 'convert', 'parquet'), 'utf8')).toBe(
      'd'.repeat(40),
    );
    await expect(loadHubDataset(parseRepoId(DATASET, 'dataset')!, ['validation'], { endpoint: hub.url, cacheDir: cache })).rejects.toThrow(
      /no parquet files for config 'main' split validation/,
    );
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = cache;
    try {
      const data = await loadData(DATASET, { seed: 0 });
      expect(data.train.map((r) => r.final)).toEqual(['72', '36']);
      expect(data.test[0].steps.length).toBeGreaterThan(0);
      expect(data.source).toMatch(/test-org\/tiny-gsm8k \(config main, commit bbbbbbb\)/);
      process.env.HF_HUB_OFFLINE = '1';
      hub.log = [];
      expect((await loadData(DATASET, { seed: 0 })).test.length).toBe(1);
      expect(hub.log).toEqual([]);
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
      delete process.env.HF_HUB_OFFLINE;
    }
  });
});

describe('browser Cache API', () => {
  it('in a browser a Hub id loads from /resolve/<commit>/ URLs, and a second load comes from the Cache API', async () => {
    const store = new Map<string, Response>();
    const g = globalThis as { document?: unknown; caches?: CacheStorageLike };
    g.caches = {
      open: async () => ({
        match: async (u: string) => store.get(u)?.clone(),
        put: async (u: string, r: Response) => void store.set(u, r),
      }),
    };
    g.document = {}; // what io.ts and the hub module take for "a browser"
    try {
      hub.log = [];
      const a = await loadHfCheckpoint(MODEL, { hub: { endpoint: hub.url } });
      expect(a.source).toBe(`${hub.url}/${MODEL}/resolve/${COMMIT}/`);
      expect([...store.keys()].sort()).toEqual(
        [
          `${hub.url}/${MODEL}/resolve/${COMMIT}/config.json`,
          `${hub.url}/${MODEL}/resolve/${COMMIT}/model.safetensors`,
          `${hub.url}/api/models/${MODEL}/revision/main`, // the last commit lookup, for offline visits
        ].sort(),
      );
      hub.log = [];
      const b = await loadHfCheckpoint(MODEL, { hub: { endpoint: hub.url } });
      expect(hub.log).toEqual([`GET /api/models/${MODEL}/revision/main`]); // only the commit lookup goes out
      for (const [n, t] of a.tensors) expect(b.tensors.get(n)!.data).toEqual(t.data);
      // offline page: the revision lookup comes from its last copy, the files from the cache
      const down = (() => Promise.reject(new TypeError('fetch failed'))) as typeof fetch;
      const c = await loadHfCheckpoint(MODEL, { hub: { endpoint: hub.url, fetch: down } });
      expect(c.source).toBe(a.source);
    } finally {
      delete g.document;
      delete g.caches;
    }
  });

  it('serves immutable /resolve/<commit>/ URLs from the cache after the first fetch; branch URLs always fetch', async () => {
    const store = new Map<string, Response>();
    const fake: CacheStorageLike = {
      open: async () => ({
        match: async (u: string) => store.get(u)?.clone(),
        put: async (u: string, r: Response) => void store.set(u, r),
      }),
    };
    let fetches = 0;
    const f = ((u: string) => {
      fetches++;
      return fetch(u);
    }) as typeof fetch;
    const url = `${hub.url}/${MODEL}/resolve/${COMMIT}/config.json`;
    const a = await (await cachedFetch(url, undefined, fake, f)).text();
    const b = await (await cachedFetch(url, undefined, fake, f)).text();
    expect(b).toBe(a);
    expect(fetches).toBe(1);
    await cachedFetch(`${hub.url}/${MODEL}/resolve/main/config.json`, undefined, fake, f);
    await cachedFetch(`${hub.url}/${MODEL}/resolve/main/config.json`, undefined, fake, f);
    expect(fetches).toBe(3);
  });
});

describe('the tokenizer and chat template from the model repo', () => {
  it('a Qwen2.5-style fine-tune loads with its own tokenizer.json (checked against HF tokenizers), trains a step, and applies its chat template', async () => {
    const cache = join(tmp, 'cache-tok');
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = cache;
    const be = new CpuBackend();
    try {
      const { model, tok, dir } = await loadModel(be, 'test-org/tiny-qwen25-instruct');
      const ref = RustTokenizer.fromString(tinyTokenizerJson());
      for (const text of ['hello world<|im_end|>', '<think>shell 48/2</think>', 'héllo\n\n  wells']) {
        expect(Array.from(tok.encode(text))).toEqual((await ref.encode(text, null, { addSpecialTokens: false })).getIds());
      }
      expect(tok.eosId).toBe(258);
      expect(tok.vocabSize).toBe(262);
      // one training step's forward and backward through the BF16 checkpoint
      const ids = Int32Array.from(tok.encode('hello hello'));
      model.zeroGrads();
      const r = await model.forward(
        { B: 1, T: ids.length, ids, labels: ids, kind: new Uint8Array(ids.length) },
        { grad: true, lossScale: 1 },
      );
      model.backward();
      expect(Number.isFinite(r.lossSum) && r.lossSum > 0).toBe(true);
      const grad = await model.readGrad('model.embed_tokens.weight');
      expect(grad.some((g) => g !== 0)).toBe(true);
      model.destroy();

      const data = {
        train: [{ question: 'What is 2+3?', steps: [], final: '5' }],
        test: [{ question: 'Q?', steps: [], final: '1' }],
        source: 'x',
      };
      expect(await applyChatTemplate(data, dir)).toMatch(/tokenizer_config\.json$/);
      // the sequence builder appends "\n" after the question: together they end exactly at the assistant turn
      expect(data.train[0].question + '\n').toBe(
        '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n',
      );
      await expect(loadModel(be, 'test-org/tiny-qwen25-small-vocab')).rejects.toThrow(
        /tokenizer\.json has 262 token ids but the model's embedding has 260 rows \(vocab_size in .*config\.json\)/,
      );
      await expect(applyChatTemplate(data, modelDir)).rejects.toThrow(/has no chat template/);
    } finally {
      be.destroy();
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
    }
  });
});

describe('examples/train.ts by id', () => {
  it('trainMain runs with --model ID --data ID --chat', async () => {
    const { trainMain } = await import('../src/cli/train-main.ts');
    const out = join(tmp, 'run');
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = join(tmp, 'cache-train');
    try {
      const args = [
        '--model',
        'test-org/tiny-qwen25-instruct',
        '--data',
        DATASET,
        '--chat',
        '--steps',
        '2',
        '--batch',
        '1',
        '--eval-every',
        '2',
        '--eval-rows',
        '1',
        '--gen-rows',
        '0',
        '--backend',
        'cpu',
        '--out',
        out,
      ];
      expect(await trainMain(args)).toBe(0);
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_CACHE;
    }
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.model).toBe('test-org/tiny-qwen25-instruct');
    expect(summary.data).toMatch(/^dataset test-org\/tiny-gsm8k \(config main/);
    expect(summary.steps).toBe(2);
    expect(Number.isFinite(summary.lastTrainLoss)).toBe(true);
  });
});
