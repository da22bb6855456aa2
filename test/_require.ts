// Optional test dependencies (a WebGPU adapter, Chromium, PyTorch, ../shared) are skipped with a message on a laptop
// that lacks them. CI must not pass green by skipping: `.ci/run` sets LATENTLM_REQUIRE=webgpu,chromium,torch,shared,
// and then a missing dependency fails the test file instead of skipping it.
export type Requirement = 'webgpu' | 'chromium' | 'torch' | 'shared';

const required = new Set(
  (process.env.LATENTLM_REQUIRE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/**
 * Call where a suite decides whether it can run. Returns `available`; throws (failing the file at collection, with
 * `why`) when it is false and LATENTLM_REQUIRE names `what`. The suite prints its own skip message as before.
 */
export function demand(what: Requirement, available: boolean, why: string): boolean {
  if (!available && required.has(what)) throw new Error(`LATENTLM_REQUIRE includes '${what}', but it is unavailable: ${why}`);
  return available;
}
