// The main job: phase-1 latent training on the embedded default model and synthetic GSM8K-style problems.
//   npx tsx examples/train.ts            (Node)
//   bun run examples/train.ts            (Bun)
//   deno run -A examples/train.ts        (Deno)
// `--help` lists the flags; `--model Qwen/Qwen2-0.5B --data openai/gsm8k` fine-tunes a real Qwen2 on GSM8K (Hub ids
// through the HF cache; local directories work too).
import { UsageError } from '../src/cli/_args.ts';
import { trainMain } from '../src/cli/train-main.ts';
import { relaunchOutsideTsxWrapper } from '../src/node/tsx-relaunch.ts';

// under `npx tsx` the training runs in a child of this process, so that Ctrl-C can save (see tsx-relaunch.ts)
const relaunched = await relaunchOutsideTsxWrapper();
if (relaunched !== undefined) process.exit(relaunched);

const code = await trainMain(process.argv.slice(2)).catch((e: Error) => {
  console.error(`error: ${e.message}${e instanceof UsageError ? ' (see --help)' : ''}`);
  return e instanceof UsageError ? 2 : 1;
});
process.exit(code);
