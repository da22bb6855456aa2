// A minimal stand-in for the parts of vitest that test/_conformance.ts uses, so the conformance suite can be
// bundled (vitest aliased to this file) and run unchanged inside a browser page by test/backend-gpujs.test.ts.
type Fn = () => unknown;
const tests: { name: string; fn: Fn }[] = [];
const before: Fn[] = [],
  after: Fn[] = [];
let prefix = '';

export function describe(name: string, fn: () => void): void {
  const outer = prefix;
  prefix = `${outer}${name} > `;
  fn();
  prefix = outer;
}
export function it(name: string, fn: Fn): void {
  tests.push({ name: prefix + name, fn });
}
export function beforeAll(fn: Fn): void {
  before.push(fn);
}
export function afterAll(fn: Fn): void {
  after.push(fn);
}
export function expect(value: unknown, label?: string) {
  const fail = (what: string): never => {
    throw new Error(`${label ? `${label}: ` : ''}expected ${JSON.stringify(value)} ${what}`);
  };
  return {
    toBe: (e: unknown) => void (value !== e && fail(`to be ${JSON.stringify(e)}`)),
    toEqual: (e: unknown) => void (JSON.stringify(value) !== JSON.stringify(e) && fail(`to equal ${JSON.stringify(e)}`)),
    toBeLessThanOrEqual: (e: number) => void (!((value as number) <= e) && fail(`to be <= ${e}`)),
    toBeLessThan: (e: number) => void (!((value as number) < e) && fail(`to be < ${e}`)),
    toThrow: (e: RegExp) => {
      let thrown: unknown;
      try {
        (value as () => unknown)();
      } catch (err) {
        thrown = err;
      }
      const msg = thrown instanceof Error ? thrown.message : String(thrown);
      if (thrown === undefined || !e.test(msg))
        throw new Error(
          `${label ? `${label}: ` : ''}expected a function throwing ${e}, ${thrown === undefined ? 'nothing was thrown' : `got '${msg}'`}`,
        );
    },
  };
}

/** Runs every registered test in order; one line per test, 'PASS name' or 'FAIL name: message'. */
export async function runAll(): Promise<string[]> {
  const out: string[] = [];
  for (const f of before) await f();
  for (const t of tests) {
    try {
      await t.fn();
      out.push(`PASS ${t.name}`);
    } catch (e) {
      out.push(`FAIL ${t.name}: ${(e as Error).message}`);
    }
  }
  for (const f of after) await f();
  return out;
}
