// Shared CLI plumbing: the command shape, flag parsing with readable errors, and JSON-lines I/O.
// Flags are node:util parseArgs (strict); its error messages are reworded to name the command and --help.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createReadStream } from 'node:fs';

export interface Command {
  name: string;
  /** One line for `latentlm --help`. */
  summary: string;
  help: string;
  /** argv after the command name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** The arguments a command defined with defineCommand receives: its flags parsed, and argv as given. */
export type ParsedFlags<O extends Options> = ReturnType<typeof parseFlags<O>>;

/**
 * A Command whose flags (`options`, at most `positionals` positionals) are parsed before `run` sees them, and whose
 * --help prints its help and exits 0: the part every command's run() began with.
 */
export function defineCommand<O extends Options>(c: {
  name: string;
  summary: string;
  help: string;
  options: O;
  positionals?: number;
  run(flags: ParsedFlags<O>, argv: string[]): Promise<number>;
}): Command {
  return {
    name: c.name,
    summary: c.summary,
    help: c.help,
    async run(argv) {
      const flags = parseFlags(c.name, argv, c.options, c.positionals ?? 0);
      if (flags.values.help) {
        console.log(c.help);
        return 0;
      }
      return c.run(flags, argv);
    },
  };
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses argv with the given options plus -h/--help. At most `maxPositionals` positionals are accepted.
 * Throws UsageError for unknown flags, missing values and extra arguments.
 */
export function parseFlags<O extends Options>(cmd: string, argv: string[], options: O, maxPositionals = 0) {
  try {
    const r = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    if (r.positionals.length > maxPositionals) {
      const extra = r.positionals
        .slice(maxPositionals)
        .map((p) => `'${p}'`)
        .join(', ');
      throw new UsageError(`${cmd}: unexpected argument${r.positionals.length - maxPositionals > 1 ? 's' : ''} ${extra}`);
    }
    return r as typeof r & { values: { help?: boolean } };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const m = /'([^']+)'/.exec(err.message);
      throw new UsageError(`${cmd}: unknown option ${m ? `'${m[1]}'` : ''}`.trimEnd());
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${cmd}: ${err.message.split('\n')[0]}`);
    throw new UsageError(`${cmd}: ${err.message}`);
  }
}

/**
 * Lines of a file, or of stdin when no file is given (or '-'), without their '\n' / '\r\n'. Streams, so a
 * producer can pipe rows in while results come out. A file that cannot be read throws "cannot read FILE: ...".
 * Only '\n' ends a line (a lone '\r' is part of the line, unlike node:readline), so line N here is line N for
 * `sed -n Np`, `wc -l` and every editor that reports numbers; a final line without '\n' still counts.
 */
export async function* readLines(file?: string): AsyncGenerator<string> {
  const input = file && file !== '-' ? createReadStream(file) : process.stdin;
  const decoder = new TextDecoder();
  let pending = '';
  try {
    for await (const chunk of input as AsyncIterable<Uint8Array | string>) {
      pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
      let nl = pending.indexOf('\n');
      if (nl < 0) continue;
      let at = 0;
      while (nl >= 0) {
        yield stripCr(pending.slice(at, nl));
        at = nl + 1;
        nl = pending.indexOf('\n', at);
      }
      pending = pending.slice(at);
    }
  } catch (e) {
    if (file && file !== '-') throw new Error(`cannot read ${file}: ${(e as Error).message}`);
    throw e;
  }
  pending += decoder.decode();
  if (pending) yield stripCr(pending);
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** Writes lines to stdout, waiting when the pipe is full; a closed pipe (`| head`) ends the process quietly. */
export function lineWriter(): { write(line: string): Promise<void> | void; end(): Promise<void> } {
  let broken = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') {
      broken = true;
      process.exit(0);
    }
    throw e;
  });
  return {
    write(line: string) {
      if (broken) return;
      if (!process.stdout.write(line + '\n')) return new Promise<void>((res) => process.stdout.once('drain', () => res()));
    },
    end() {
      return new Promise<void>((res) => process.stdout.write('', () => res()));
    },
  };
}

/**
 * The JSON-lines loop every filter command shares: each non-blank input line goes through `map`, whose return value
 * is printed; a line `map` throws on prints {"error", "line"} in its place (bad JSON is labelled as such), and the
 * exit code is 1 if any line was malformed. A blank input line prints a blank line, so output line N always
 * answers input line N (paste, join and diff line up).
 */
export async function mapJsonLines(cmd: string, file: string | undefined, map: (line: string) => string, what = 'line'): Promise<number> {
  const out = lineWriter();
  let bad = 0;
  let n = 0;
  for await (const line of readLines(file)) {
    n++;
    if (!line.trim()) {
      await out.write('');
      continue;
    }
    let text: string;
    try {
      text = map(line);
    } catch (e) {
      bad++;
      const msg = (e as Error).message;
      text = JSON.stringify({ error: e instanceof SyntaxError ? `bad JSON: ${msg}` : msg, line: n });
    }
    await out.write(text);
  }
  await out.end();
  if (bad) console.error(`latentlm ${cmd}: ${bad} malformed ${what}${bad > 1 ? 's' : ''}`);
  return bad ? 1 : 0;
}
