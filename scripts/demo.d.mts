// Types for demo.mjs (imported by test/browser.test.ts).
import type { Server } from 'node:http';
export function serve(opts: {
  root: string;
  port?: number;
  host?: string;
  mounts?: Record<string, string>;
  isolated?: boolean;
}): Promise<{ server: Server; url: string }>;
