// Phase 2: GRPO-style RL with verifiable rewards on the embedded default model and synthetic GSM8K-style problems.
// The policy writes text and decides itself when to open and close latent spans; only the final answer is graded.
//   npx tsx examples/rl.ts                       (Node)
//   bun run examples/rl.ts                       (Bun)
//   deno run -A examples/rl.ts                   (Deno)
// `--help` lists the flags; `--init runs/train/checkpoint` starts from a phase-1 run;
// `--model DIR --data PATH` runs on a real Qwen2 and GSM8K.
import { UsageError } from '../src/cli/_args.ts';
import { rlMain } from '../src/cli/rl.ts';
import { relaunchOutsideTsxWrapper } from '../src/node/tsx-relaunch.ts';

// under `npx tsx` the training runs in a child of this process, so that Ctrl-C can save (see tsx-relaunch.ts)
const relaunched = await relaunchOutsideTsxWrapper();
if (relaunched !== undefined) process.exit(relaunched);

const code = await rlMain(process.argv.slice(2)).catch((e: Error) => {
  console.error(`error: ${e.message}${e instanceof UsageError ? ' (see --help)' : ''}`);
  return e instanceof UsageError ? 2 : 1;
});
process.exit(code);
