// JSON Lines: append-only logs (training metrics, eval results) and datasets (GSM8K rows).
//
// JsonlWriter on Node/Bun/Deno appends to a file with one synchronous write per line, so every line is in the OS as
// soon as write() returns: a crash or Ctrl-C loses at most the line being written, and `tail -f` sees progress live.
// (node:fs is reached through a dynamic import, so browser bundles carry none of it.) In a browser, or with no path,
// lines are kept in memory (`lines`, `text()`) for the page to show or download.
//
// Non-finite numbers are written as the strings "NaN", "Infinity", "-Infinity" instead of JSON.stringify's null: a
// diverged loss must stay visible in the log, and Number("NaN") plots as a gap where Number(null) would plot as 0.

import { readText, type Source } from './source.ts';

const isBrowser = () =>
  typeof (globalThis as { document?: unknown }).document !== 'undefined' ||
  typeof (globalThis as { importScripts?: unknown }).importScripts === 'function';

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

/** One JSON line (no trailing newline); throws naming `where` when the value cannot be serialised. */
export function toJsonLine(value: unknown, where = 'jsonl'): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value, replacer);
  } catch (e) {
    throw new Error(`${where}: cannot serialise value as JSON: ${(e as Error).message}`);
  }
  if (s === undefined) throw new Error(`${where}: value ${String(value)} has no JSON form`);
  return s; // JSON.stringify escapes newlines inside strings, so one value is always one line
}

type NodeFs = typeof import('node:fs');

export interface JsonlWriterOptions {
  /** Append to an existing file (default true, so nothing is ever lost and resumed runs continue their log); false
   *  starts a fresh file. */
  append?: boolean;
  /** fsync after every line (survives power loss, slower). Default false. */
  fsync?: boolean;
}

export class JsonlWriter {
  /** In-memory lines (browser or no path); empty when writing to a file. */
  readonly lines: string[] = [];
  private closed = false;

  private constructor(
    readonly path: string | null,
    private readonly fs: NodeFs | null,
    private fd: number | null,
    private readonly fsync: boolean,
  ) {}

  /** A writer appending to `path` (Node/Bun/Deno), or in memory when `path` is null/undefined or in a browser. */
  static async open(path?: string | null, opts: JsonlWriterOptions = {}): Promise<JsonlWriter> {
    if (!path || isBrowser()) return new JsonlWriter(path ?? null, null, null, false);
    const fs = (await import('node:fs')) as NodeFs;
    let fd: number;
    try {
      fd = fs.openSync(path, opts.append === false ? 'w' : 'a');
    } catch (e) {
      throw new Error(`JsonlWriter: cannot open ${path}: ${(e as Error).message}`);
    }
    return new JsonlWriter(path, fs, fd, !!opts.fsync);
  }

  /** An in-memory writer (synchronous; for tests and browsers). */
  static memory(): JsonlWriter {
    return new JsonlWriter(null, null, null, false);
  }

  /** Appends one value as one line; on a file, the line has reached the OS when this returns. */
  write(value: unknown): void {
    const where = this.path ?? 'jsonl (memory)';
    if (this.closed) throw new Error(`JsonlWriter ${where}: write after close`);
    const line = toJsonLine(value, where);
    if (this.fd === null) {
      this.lines.push(line);
      return;
    }
    // One writeSync per line (a loop only for partial writes): lines from one writer are never interleaved.
    const buf = new TextEncoder().encode(line + '\n');
    const fs = this.fs!;
    const start = fs.fstatSync(this.fd).size;
    let off = 0;
    try {
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
      if (this.fsync) fs.fsyncSync(this.fd);
    } catch (e) {
      // A disk-full (ENOSPC) or I/O error mid-line would leave a torn record: cut the file back to its last whole line.
      try {
        fs.ftruncateSync(this.fd, start);
      } catch {
        // the truncate failing too leaves a partial last line, which readers report with its line number
      }
      throw new Error(`JsonlWriter: cannot write ${where}: ${(e as Error).message}`);
    }
  }

  /** In-memory content as JSONL text (newline-terminated). */
  text(): string {
    return this.lines.map((l) => l + '\n').join('');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== null) {
      this.fs!.closeSync(this.fd);
      this.fd = null;
    }
  }
}

/**
 * Parses JSONL text. Blank lines are skipped (a trailing newline, CRLF files and a UTF-8 BOM are fine); a malformed line
 * throws "<file>:<line>: invalid JSON (...)" with the 1-based line number and the start of the line.
 */
export function readJsonl<T = unknown>(text: string, opts: { file?: string } = {}): T[] {
  const file = opts.file ?? '<jsonl>';
  const out: T[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      const snippet = line.length > 80 ? line.slice(0, 80) + '...' : line;
      throw new Error(`${file}:${i + 1}: invalid JSON (${(e as Error).message}): ${snippet}`);
    }
  }
  return out;
}

/** Reads and parses a JSONL file or URL (see readText in io.ts); errors name the source and line. */
export async function readJsonlFile<T = unknown>(source: Source): Promise<T[]> {
  return readJsonl<T>(await readText(source), { file: String(source) });
}
