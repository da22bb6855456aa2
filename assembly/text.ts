// WASM entry for the text pipeline: GSM8K answer splitting (_text_split.ts) and reward checking
// (_text_reward.ts). The JS wrapper is src/text/text-wasm.ts; buffers and their layout are in _text_buf.ts.
// Both entry points take a whole batch per call so a training step pays the JS<->WASM crossing once.
export { ensureInput, ensureTable, inputPtr, tablePtr } from './_text_buf';
import { outPtr, asciiPtr } from './_text_buf';
export { splitRows } from './_text_split';
export { rewardRows } from './_text_reward';
export { expandRows } from './_text_expand';

export function outputPtr(): usize {
  return outPtr;
}

export function asciiBufPtr(): usize {
  return asciiPtr;
}

// Frees large buffers after a big batch (src/text/text-wasm.ts calls it), so their memory is reused by later calls.
export { trimBuffers } from './_text_buf';
