// latentlm: train language models to think in latent tokens interleaved with text.
// One entry for Node, Deno, Bun and browsers (the browser build is src/browser.ts: the same API,
// less the Node-only sweep runner below).
export * from './api.js';

// Node/Bun only (not in the browser entry): the experiment grid runner spawns `latentlm train` processes.
export { runSweep, defaultTrainCommand, readCompleteSummary } from './sweep/run.js';
export type { SweepOptions, SweepResult, CellEvent, CellOutcome, CellStatus } from './sweep/run.js';
export { CONDITIONS, parseConditions, planCells } from './sweep/grid.js';
export type { Cell, ConditionSpec, GridSpec, NamedCondition } from './sweep/grid.js';
export { sweepRows, sweepMarkdown, sweepSvg } from './sweep/table.js';
export type { SweepRow, SeedMetric, PooledAccuracy, CellSummary } from './sweep/table.js';
export { wilsonInterval, meanInterval, tQuantile975 } from './sweep/stats.js';
