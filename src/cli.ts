#!/usr/bin/env node
// `latentlm` command-line entry (package.json bin -> dist/cli.js; in development: npx tsx src/cli.ts).
// Each command lives in src/cli/<name>.ts and exports a Command ({name, summary, help, run}); adding one is
// one import and one entry in COMMANDS.
import { UsageError, type Command } from './cli/_args.js';
import { compareCommand } from './cli/compare.js';
import { dumpCommand } from './cli/dump.js';
import { rewardCommand } from './cli/reward.js';
import { splitCommand } from './cli/split.js';
import { tokenizeCommand } from './cli/tokenize.js';
import { trainCommand } from './cli/train.js';
import { rlCommand } from './cli/rl.js';
import { sweepCommand } from './cli/sweep.js';

const COMMANDS: Command[] = [
  tokenizeCommand,
  splitCommand,
  rewardCommand,
  dumpCommand,
  trainCommand,
  rlCommand,
  compareCommand,
  sweepCommand,
];

function topHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'latentlm <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    "Run 'latentlm <command> --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0]) return main([rest[0], '--help']);
    console.log(topHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    console.error(`latentlm: unknown command '${name}'\n\n${topHelp()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`latentlm ${e.message} (see 'latentlm ${cmd.name} --help')`);
      return 2;
    }
    console.error(`latentlm ${cmd.name}: ${(e as Error).message}`);
    return 1;
  }
}

// under `npx tsx src/cli.ts train|rl` the job runs in a child of this process, so that Ctrl-C can save (tsx-relaunch.ts)
const argv = process.argv.slice(2);
const relaunch =
  argv[0] === 'train' || argv[0] === 'rl'
    ? import('./node/tsx-relaunch.js').then((m) => m.relaunchOutsideTsxWrapper())
    : Promise.resolve(undefined);
relaunch
  .then((code) => code ?? main(argv))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(`latentlm: ${(e as Error).stack ?? e}`);
      process.exitCode = 1;
    },
  );
