// Browser entry: the same API as src/index.ts. It exists as its own entry so bundlers resolving the `browser`
// export condition get a module graph in which Node-only code (src/node/*, node:fs) is never imported statically.
export * from './api.js';
