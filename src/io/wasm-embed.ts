// Instantiates a WASM module that scripts/build-wasm.mjs embedded as base64. Works in every runtime:
// no fs, no fetch, just bytes.
export function base64ToBytes(b64: string): Uint8Array {
  if (typeof atob === 'function') {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  // Very old runtimes only; every supported runtime has atob.
  throw new Error('latentlm: no atob() in this runtime');
}

export async function instantiateEmbedded<T extends WebAssembly.Exports>(b64: string, imports: WebAssembly.Imports = {}): Promise<T> {
  const bytes = base64ToBytes(b64);
  const env = {
    abort(_msg: number, _file: number, line: number, col: number) {
      throw new Error(`latentlm wasm abort at ${line}:${col}`);
    },
    ...(imports.env ?? {}),
  };
  const { instance } = (await WebAssembly.instantiate(bytes as BufferSource, {
    ...imports,
    env,
  })) as unknown as WebAssembly.WebAssemblyInstantiatedSource;
  return instance.exports as T;
}
