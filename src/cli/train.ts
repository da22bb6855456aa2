// `latentlm train`: phase 1 (the same job as examples/train.ts).
import type { Command } from './_args.js';

export const trainCommand: Command = {
  name: 'train',
  summary: 'phase 1: supervised latent training (default model + synthetic task, or --model/--data)',
  help: 'latentlm train [flags]: run with --help for the flags',
  async run(argv: string[]): Promise<number> {
    const { trainMain } = await import('./train-main.js');
    return trainMain(argv);
  },
};
