// Worker entry of scripts/fuzz.ts: registers tsx's loader in this thread (workers do not inherit it), then runs
// fuzz.ts, which sees that it is not the main thread and fuzzes the target in workerData.
import { register } from 'tsx/esm/api';

register();
await import('./fuzz.ts');
