// Optional test dependencies (a WebGPU adapter, Chromium, PyTorch, ../shared) are skipped with a message on a laptop
// that lacks them. CI must not pass green by skipping: `.ci/run` sets LATENTLM_REQUIRE=webgpu,chromium,torch,shared,
// and then a missing dependency fails the suite instead of skipping it.
export type Requirement = 'webgpu' | 'chromium' | 'torch' | 'shared';

const required = new Set((process.env.LATENTLM_REQUIRE ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/**
 * Call where a suite decides to skip for want of `what`. Returns `true` (skip) after printing why, unless
 * LATENTLM_REQUIRE names `what`: then it throws, so the test file fails at collection with the same reason.
 */
export function skipWithout(what: Requirement, available: boolean, why: string): boolean {
  if (available) return false;
  if (required.has(what)) throw new Error(`LATENTLM_REQUIRE includes '${what}', but it is unavailable: ${why}`);
  console.log(`[skip] ${why}`);
  return true;
}
