// Row alignment of the JSON-lines commands: output line N answers input line N. Blank input lines print blank
// lines, only '\n' ends a line (a lone '\r' does not, so reported line numbers are those of `sed -n Np`), CRLF
// input works, and a last line without '\n' counts.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function cli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout }));
    p.stdin.end(stdin);
  });
}

const ROW = JSON.stringify({ question: 'q', answer: 'a <<1+1=2>>2\n#### 2' });

describe.concurrent('CLI rows line up with input lines', () => {
  it('split: blank lines, a lone \\r inside a line, CRLF and no final newline', async () => {
    // Line 3 holds a lone '\r' between two JSON values: one line (bad JSON), not two.
    const input = [ROW, '', `${ROW}\r${ROW}`, '   ', `${ROW}\r`, 'not json', ROW].join('\n');
    const r = await cli(['split'], input);
    const out = r.stdout.split('\n');
    expect(out.pop()).toBe(''); // newline-terminated
    expect(out).toHaveLength(7);
    expect(JSON.parse(out[0]).final).toBe('2');
    expect(out[1]).toBe('');
    expect(JSON.parse(out[2])).toMatchObject({ line: 3 });
    expect(JSON.parse(out[2]).error).toMatch(/bad JSON/);
    expect(out[3]).toBe('');
    expect(JSON.parse(out[4]).final).toBe('2'); // CRLF
    expect(JSON.parse(out[5])).toMatchObject({ line: 6 });
    expect(JSON.parse(out[6]).final).toBe('2'); // last line, no '\n'
    expect(r.code).toBe(1);
  });

  it('reward and tokenize keep blank lines in place', async () => {
    const rw = await cli(['reward'], ['{"completion": "#### 5", "gold": "5"}', '', '{"completion": "4", "gold": 5}', ''].join('\n'));
    expect(rw.stdout.split('\n').map((l) => (l ? JSON.parse(l).reward : l))).toEqual([1, '', 0, '']); // the final '\n' ends line 3, it starts no line 4
    expect(rw.code).toBe(0);
    const tk = await cli(['tokenize'], '"a"\n\n\n"b"\n');
    expect(tk.stdout).toBe('[64]\n\n\n[65]\n');
  });
});
