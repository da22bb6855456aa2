// Types for build.mjs (imported by test/browser.test.ts).
export function buildDemo(outDir?: string): Promise<{ outDir: string; files: number; bytes: number }>;
