// The main job: phase-1 latent training on the embedded default model and synthetic GSM8K-style problems.
//   npx tsx examples/train.ts            (Node)
//   bun run examples/train.ts            (Bun)
//   deno run -A examples/train.ts        (Deno)
// `--help` lists the flags; `--model Qwen/Qwen2-0.5B --data openai/gsm8k` fine-tunes a real Qwen2 on GSM8K (Hub ids
// through the HF cache; local directories work too).
import { trainMain } from '../src/app/train.ts';

const code = await trainMain(process.argv.slice(2)).catch((e: Error) => {
  console.error(`error: ${e.message}`);
  return 1;
});
process.exit(code);
