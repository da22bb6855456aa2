// A completion written by hand, laid out as the decoder (src/generation/decode.ts) lays one out, for tests that
// replay or score chosen completions instead of sampled ones.
import { Kind } from '../src/model/qwen2.js';
import { EXTRA_BOL, EXTRA_EOL } from '../src/latent/sequence.js';
import type { Action, Completion } from '../src/generation/decode.js';

/** prompt, then items (a token id, or { latents: k } for <bol> k latents <eol>); eos ends the text and is not in it. */
export function handCompletion(prompt: number[], items: (number | { latents: number })[], eos: number): Completion {
  const seq = { ids: [...prompt], kind: prompt.map(() => Kind.Token as number), extra: prompt.map(() => -1) };
  const actions: Action[] = [],
    tokens: number[] = [],
    spans: Completion['spans'] = [];
  let latents = 0;
  for (const it of items) {
    if (typeof it === 'number') {
      actions.push({ type: 'token', pos: seq.ids.length, id: it, logp: 0 });
      seq.ids.push(it), seq.kind.push(Kind.Token), seq.extra.push(-1);
      if (it !== eos) tokens.push(it);
    } else {
      actions.push({ type: 'start', pos: seq.ids.length - 1, take: true, p: 0.5, logp: Math.log(0.5) });
      seq.ids.push(0), seq.kind.push(Kind.Extra), seq.extra.push(EXTRA_BOL);
      for (let j = 0; j < it.latents; j++) {
        seq.ids.push(0), seq.kind.push(Kind.Latent), seq.extra.push(-1);
        if (j < it.latents - 1) actions.push({ type: 'end', pos: seq.ids.length - 1, stop: false, p: 0.5, logp: Math.log(0.5) });
      }
      actions.push({ type: 'end', pos: seq.ids.length - 1, stop: true, p: 0.5, logp: Math.log(0.5) });
      seq.ids.push(0), seq.kind.push(Kind.Extra), seq.extra.push(EXTRA_EOL);
      spans.push({ at: tokens.length, count: it.latents });
      latents += it.latents;
    }
  }
  return { seq, promptLength: prompt.length, tokens, actions, spans, latents, finish: 'eos' };
}
