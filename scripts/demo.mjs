// `npm run demo`: builds the browser demo (examples/browser/build.mjs; `npm run demo` builds the package first)
// and serves it on http://127.0.0.1:PORT (default 5173) with a tiny static server. Nothing but local files.
//   PORT=8080 npm run demo
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

/**
 * Serves `root` (and each `mounts` entry: URL prefix -> directory) on host:port. GET and HEAD only; paths
 * outside a served directory are refused. Resolves to { server, url } once listening (port 0 = any free port).
 * `isolated` (default true) sends COOP/COEP, which make the page cross-origin isolated: shared memory, so the
 * WASM backend can run its threads (without them it falls back to one thread and says so).
 */
export function serve({ root, port = 5173, host = '127.0.0.1', mounts = {}, isolated = true }) {
  const isolation = isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
  const dirs = [...Object.entries(mounts), ['/', root]].map(([prefix, dir]) => [
    prefix.endsWith('/') ? prefix : prefix + '/',
    resolve(dir),
  ]);
  const server = createServer((req, res) => {
    const send = (code, text) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(400, 'bad request');
    }
    const [prefix, dir] = dirs.find(([p]) => path.startsWith(p)) ?? dirs[dirs.length - 1];
    let file = normalize(join(dir, path.slice(prefix.length)));
    if (file !== dir && !file.startsWith(dir + sep)) return send(403, 'forbidden');
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file) || !statSync(file).isFile()) return send(404, `not found: ${path}`);
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cache-control': 'no-store',
      ...isolation,
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((resolveP, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolveP({ server, url: `http://${host}:${a.port}/` });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { buildDemo } = await import('../examples/browser/build.mjs');
  const { outDir } = await buildDemo();
  const port = Number(process.env.PORT ?? 5173);
  const { url } = await serve({ root: outDir, port });
  console.log(`latentlm demo: ${url}  (Ctrl-C to stop)`);
}
