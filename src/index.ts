// latentlm: train language models to think in latent tokens interleaved with text.
// One entry for Node, Deno, Bun and browsers (the browser build is src/browser.ts: the same API).
export * from './api.js';
