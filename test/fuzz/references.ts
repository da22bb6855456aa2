// Independent references for the fuzzer, written from the rules documented in assembly/_text_split.ts and
// assembly/_text_reward.ts (search with indexOf and regexes, not the WASM's single forward scan). They share no
// code with src/: a difference between the two is a bug in one of them.

export type RefSplit = { steps: string[]; annotations: { expr: string; result: string }[]; final: string } | { error: string };

const SPLIT_ERRORS = [
  "answer has no '#### N' final line",
  "answer's '####' line has no final answer",
  "answer has text after its '#### N' final line",
];
const isBlank = (c: string) => c === ' ' || c === '\t' || c === '\r';

export function refSplit(answer: string): RefSplit {
  // 1. The final line: the last line starting with "####".
  let finalLine = -1;
  for (let at = 0; at <= answer.length; ) {
    const nl = answer.indexOf('\n', at);
    const end = nl < 0 ? answer.length : nl;
    if (answer.startsWith('####', at) && at + 4 <= end) finalLine = at;
    if (nl < 0) break;
    at = nl + 1;
  }
  if (finalLine < 0) return { error: SPLIT_ERRORS[0] };
  const nl = answer.indexOf('\n', finalLine);
  const lineEnd = nl < 0 ? answer.length : nl;
  let fs = finalLine + 4;
  let fe = lineEnd;
  while (fs < fe && isBlank(answer[fs])) fs++;
  while (fe > fs && isBlank(answer[fe - 1])) fe--;
  if (fe === fs) return { error: SPLIT_ERRORS[1] };
  if (/[^\n \t\r]/.test(answer.slice(lineEnd))) return { error: SPLIT_ERRORS[2] };
  const stepsEnd = finalLine > 0 ? finalLine - 1 : 0;
  const region = answer.slice(0, stepsEnd);
  // 2.-5. Annotations, line by line: the first ">>" after the first "<<" closes; the last "<<" before it opens
  // (innermost wins); the body splits at its last '='.
  const steps: string[] = [];
  const annotations: { expr: string; result: string }[] = [];
  let stepStart = 0;
  let lineStart = 0;
  for (const line of region.split('\n')) {
    let p = 0;
    for (;;) {
      const first = line.indexOf('<<', p);
      if (first < 0) break;
      const close = line.indexOf('>>', first + 2);
      if (close < 0) break;
      const open = line.lastIndexOf('<<', close - 2);
      const body = line.slice(open + 2, close);
      const eq = body.lastIndexOf('=');
      steps.push(region.slice(stepStart, lineStart + open));
      annotations.push(eq < 0 ? { expr: body, result: '' } : { expr: body.slice(0, eq), result: body.slice(eq + 1) });
      stepStart = lineStart + close + 2;
      p = close + 2;
    }
    lineStart += line.length + 1;
  }
  steps.push(region.slice(stepStart));
  return { steps, annotations, final: answer.slice(fs, fe).replace(/,/g, '') };
}

const BODY = String.raw`\d+(?:,\d+)*(?:\.\d+)?|\.\d+`;
const MINUS = '[-\u2212]';
// "####", blanks, then "-$", "$-", "-" or "$" and a number; or a number on its own.
const TOKEN = new RegExp(`####[ \\t]*(?:(${MINUS})\\$?|\\$?(${MINUS})?)(${BODY})|(${BODY})`, 'gu');
const isAlnum = (c: string | undefined) => c !== undefined && /[0-9A-Za-z]/.test(c);

function canonical(body: string, neg: boolean): string {
  const [intPart, frac = ''] = body.replace(/,/g, '').split('.');
  const int = intPart.replace(/^0+/, '') || '0';
  const f = frac.replace(/0+$/, '');
  const s = f ? `${int}.${f}` : int;
  return neg && s !== '0' ? `-${s}` : s;
}

export interface RefReward {
  reward: number;
  format: number;
  extracted: string;
}

/** reward -1 means the gold is not a number. */
export function refReward(completion: string, gold: string, strict: boolean): RefReward {
  let marked: string | null = null;
  let last: string | null = null;
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(completion); m; m = TOKEN.exec(completion)) {
    if (m[3] !== undefined) {
      marked = last = canonical(m[3], m[1] !== undefined || m[2] !== undefined);
      continue;
    }
    const at = m.index;
    // A '.' right after a digit never starts a number: skip just the '.'.
    if (m[4].startsWith('.') && at > 0 && /\d/.test(completion[at - 1])) {
      TOKEN.lastIndex = at + 1;
      continue;
    }
    // A sign: '-' (or U+2212) before the number or before a '$' before it, not right after a letter or digit.
    let k = at;
    if (completion[k - 1] === '$') k--;
    const neg = k > 0 && /[-\u2212]/.test(completion[k - 1]) && !isAlnum(completion[k - 2]);
    last = canonical(m[4], neg);
  }
  const answer = marked ?? (strict ? null : last);
  const g = new RegExp(`^[ \\t\\n\\r]*(?:(${MINUS})\\$?|\\$?(${MINUS})?)(${BODY})\\.?[ \\t\\n\\r]*$`, 'u').exec(gold);
  const out = { format: marked !== null ? 1 : 0, extracted: answer ?? '' };
  if (!g) return { reward: -1, ...out };
  const goldCanon = canonical(g[3], g[1] !== undefined || g[2] !== undefined);
  return { reward: answer !== null && answer === goldCanon ? 1 : 0, ...out };
}
