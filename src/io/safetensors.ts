// safetensors (https://github.com/huggingface/safetensors): a u64 little-endian header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the data section
// with offsets relative to its start. The parser checks everything the format promises (offsets in range, tensors
// tiling the data section exactly, byte lengths matching shapes) so a truncated or corrupt checkpoint fails loudly
// at load time, naming the file and the tensor, instead of producing garbage weights later.
// The writer follows the reference implementation so HF tools load what we write: tensors laid out by descending
// dtype size then name (every tensor aligned to its element size), header padded with spaces to 8 bytes.
// Typed-array views assume a little-endian host (every platform JS runs on in practice); we check once.

export type Dtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export interface SafetensorsEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** The tensor's bytes: a view into the file's buffer (no copy), little-endian. */
  data: Uint8Array;
}

export interface Safetensors {
  /** `__metadata__` (empty when the file has none). */
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, SafetensorsEntry>;
}

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length would otherwise OOM). */
const MAX_HEADER = 100_000_000;

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!littleEndian) throw new Error('safetensors: this big-endian host is not supported');
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Parses and validates a safetensors file held in memory. `name` is used in every error message. */
export function parseSafetensors(bytes: Uint8Array, name = 'file'): Safetensors {
  if (bytes.byteLength < 8) throw new Error(`${name}: file is ${bytes.byteLength} bytes, too short for a safetensors header (truncated?)`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) {
    throw new Error(
      `${name}: header length ${n} exceeds the ${bytes.byteLength - 8} bytes after the length field (truncated or not a safetensors file)`,
    );
  }
  if (n > BigInt(MAX_HEADER)) throw new Error(`${name}: header length ${n} exceeds the ${MAX_HEADER} byte limit`);
  const headerLen = Number(n);
  const headerBytes = bytes.subarray(8, 8 + headerLen);
  if (headerBytes[0] !== 0x7b) throw new Error(`${name}: header does not start with '{' (not a safetensors file?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new Error(`${name}: header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${name}: header is not a JSON object`);

  const dataStart = 8 + headerLen;
  const dataSize = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  const spans: { begin: number; end: number; name: string }[] = [];
  for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${name}: __metadata__ is not an object`);
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new Error(`${name}: __metadata__ value '${mk}' is not a string`);
        metadata[mk] = mv;
      }
      continue;
    }
    const where = `${name}: tensor '${key}'`;
    if (typeof value !== 'object' || value === null) throw new Error(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw new Error(`${where}: offsets [${begin}, ${end}] are reversed`);
    if (end > dataSize) throw new Error(`${where}: offsets [${begin}, ${end}] exceed data size ${dataSize} (truncated file?)`);
    const want = numel(shape) * DTYPE_SIZE[dtype as Dtype];
    if (end - begin !== want) {
      throw new Error(`${where}: ${dtype}${fmtShape(shape)} needs ${want} bytes but offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    spans.push({ begin, end, name: key });
    tensors.set(key, { name: key, dtype: dtype as Dtype, shape: shape.slice(), data: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  // The spec: the data section is exactly the concatenation of the tensors, no holes, no overlaps.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '';
  for (const s of spans) {
    if (s.begin < pos) throw new Error(`${name}: tensor '${s.name}' at [${s.begin}, ${s.end}] overlaps tensor '${prev}' ending at ${pos}`);
    if (s.begin > pos) throw new Error(`${name}: ${s.begin - pos} unused bytes before tensor '${s.name}' at [${s.begin}, ${s.end}]`);
    pos = s.end;
    prev = s.name;
  }
  if (pos !== dataSize) throw new Error(`${name}: tensors cover ${pos} bytes but the data section has ${dataSize} (trailing bytes)`);
  return { metadata, tensors };
}

/** A typed-array view of `data` if it is aligned, else of an aligned copy. */
function aligned<T>(data: Uint8Array, size: number, make: (buf: ArrayBufferLike, off: number, len: number) => T): T {
  if (data.byteOffset % size === 0) return make(data.buffer, data.byteOffset, data.byteLength / size);
  return make(data.slice().buffer, 0, data.byteLength / size);
}

let f16Table: Float32Array | null = null;
/** All 65536 half-precision values as f32 (256 KB, built on first use): conversion becomes one lookup. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (f16Table = t);
}

/** Converts a floating or integer tensor to a fresh Float32Array (F8 types are not supported). */
export function toFloat32(entry: SafetensorsEntry): Float32Array {
  assertLittleEndian();
  const { data, dtype } = entry;
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned(data, 4, (b, o, l) => new Float32Array(b, o, l)));
    case 'BF16': {
      // bf16 is the high half of an f32: shift the bits up, reinterpret.
      const src = aligned(data, 2, (b, o, l) => new Uint16Array(b, o, l));
      const out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'F16': {
      const src = aligned(data, 2, (b, o, l) => new Uint16Array(b, o, l));
      const table = halfTable();
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
      return out;
    }
    case 'F64':
      return Float32Array.from(aligned(data, 8, (b, o, l) => new Float64Array(b, o, l)));
    case 'I32':
      return Float32Array.from(aligned(data, 4, (b, o, l) => new Int32Array(b, o, l)));
    case 'U32':
      return Float32Array.from(aligned(data, 4, (b, o, l) => new Uint32Array(b, o, l)));
    case 'I16':
      return Float32Array.from(aligned(data, 2, (b, o, l) => new Int16Array(b, o, l)));
    case 'U16':
      return Float32Array.from(aligned(data, 2, (b, o, l) => new Uint16Array(b, o, l)));
    case 'I8':
      return Float32Array.from(new Int8Array(data.buffer, data.byteOffset, data.byteLength));
    case 'U8':
    case 'BOOL':
      return Float32Array.from(data);
    case 'I64':
      return Float32Array.from(
        aligned(data, 8, (b, o, l) => new BigInt64Array(b, o, l)),
        Number,
      );
    case 'U64':
      return Float32Array.from(
        aligned(data, 8, (b, o, l) => new BigUint64Array(b, o, l)),
        Number,
      );
    default:
      throw new Error(`tensor '${entry.name}': cannot convert ${dtype} to float32`);
  }
}

/** Converts an integer tensor (I32, I64, I16, I8, U8, ...) to a fresh Int32Array; errors on values out of range. */
export function toInt32(entry: SafetensorsEntry): Int32Array {
  assertLittleEndian();
  const { data, dtype } = entry;
  if (dtype === 'I32') return new Int32Array(aligned(data, 4, (b, o, l) => new Int32Array(b, o, l)));
  if (dtype === 'I64' || dtype === 'U64' || dtype === 'U32') {
    const src =
      dtype === 'U32'
        ? Array.from(
            aligned(data, 4, (b, o, l) => new Uint32Array(b, o, l)),
            BigInt,
          )
        : dtype === 'I64'
          ? aligned(data, 8, (b, o, l) => new BigInt64Array(b, o, l))
          : aligned(data, 8, (b, o, l) => new BigUint64Array(b, o, l));
    const out = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v > 2147483647n || v < -2147483648n) throw new Error(`tensor '${entry.name}': element ${i} = ${v} does not fit in int32`);
      out[i] = Number(v);
    }
    return out;
  }
  if (dtype === 'I16' || dtype === 'U16' || dtype === 'I8' || dtype === 'U8' || dtype === 'BOOL') return Int32Array.from(toFloat32(entry));
  throw new Error(`tensor '${entry.name}': ${dtype} is not an integer dtype`);
}

/** f32 bits -> bf16 bits, round to nearest even; NaN -> 0x7FC0 (what torch produces); overflow -> inf, never NaN. */
export function f32BitsToBf16(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16; // no 2^32 wrap: the largest non-NaN input is 0xFF800000
}

/** f32 bits -> f16 bits, round to nearest even, subnormals included; NaN -> sign | 0x7E00 (as torch). */
export function f32BitsToF16(bits: number): number {
  bits >>>= 0;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  let q: number, rem: number, half: number;
  if (e <= 0) {
    // half subnormal: value = q * 2^-24, q = (1.mant * 2^23) >> (14 - e)
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    q = m >>> shift;
    rem = m & ((1 << shift) - 1);
    half = 1 << (shift - 1);
  } else {
    q = (e << 10) | (mant >>> 13);
    rem = mant & 0x1fff;
    half = 0x1000;
  }
  if (rem > half || (rem === half && q & 1)) q++; // a carry into the exponent is right (up to inf)
  return sign | q;
}

export type WriteDtype = 'F32' | 'BF16' | 'F16' | 'I32';

export interface WriteTensor {
  name: string;
  dtype: WriteDtype;
  shape: number[];
  /** Values; for BF16/F16 a Uint16Array is taken as the raw bits (written unchanged). */
  data: Float32Array | Int32Array | Uint16Array;
}

/** Serializes tensors (+ optional string metadata) into a safetensors file loadable by HF `safetensors`. */
export function writeSafetensors(tensors: readonly WriteTensor[], metadata?: Record<string, string>): Uint8Array {
  assertLittleEndian();
  const seen = new Set<string>();
  for (const t of tensors) {
    const where = `writeSafetensors: tensor '${t.name}'`;
    if (!t.name || t.name === '__metadata__') throw new Error(`${where}: invalid name`);
    if (seen.has(t.name)) throw new Error(`${where}: duplicate name`);
    seen.add(t.name);
    if (!(t.dtype in DTYPE_SIZE) || !['F32', 'BF16', 'F16', 'I32'].includes(t.dtype))
      throw new Error(`${where}: cannot write dtype ${t.dtype}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where}: bad shape ${fmtShape(t.shape)}`);
    if (numel(t.shape) !== t.data.length)
      throw new Error(`${where}: shape ${fmtShape(t.shape)} has ${numel(t.shape)} elements, data has ${t.data.length}`);
    if (t.data instanceof Uint16Array && t.dtype !== 'BF16' && t.dtype !== 'F16')
      throw new Error(`${where}: raw 16-bit data given for ${t.dtype}`);
  }
  if (metadata)
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata '${k}' is not a string`);

  // Descending element size, then name: every tensor starts at a multiple of its element size.
  const order = [...tensors].sort((a, b) => DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const offsets: number[] = [];
  let off = 0;
  for (const t of order) {
    const len = t.data.length * DTYPE_SIZE[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + len] };
    offsets.push(off);
    off += len;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  const headerLen = json.length + pad;
  const out = new Uint8Array(8 + headerLen + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  const base = 8 + headerLen; // a multiple of 8
  order.forEach((t, i) => {
    const at = base + offsets[i];
    const n = t.data.length;
    if (t.dtype === 'F32' || t.dtype === 'I32') {
      if (t.dtype === 'I32' && t.data instanceof Float32Array) {
        const dst = new Int32Array(out.buffer, at, n);
        for (let j = 0; j < n; j++) {
          if (!Number.isInteger(t.data[j]))
            throw new Error(`writeSafetensors: tensor '${t.name}': element ${j} = ${t.data[j]} is not an integer (I32)`);
          dst[j] = t.data[j];
        }
      } else if (t.dtype === 'F32') new Float32Array(out.buffer, at, n).set(t.data);
      else new Int32Array(out.buffer, at, n).set(t.data);
      return;
    }
    const dst = new Uint16Array(out.buffer, at, n);
    if (t.data instanceof Uint16Array) return dst.set(t.data);
    const src =
      t.data instanceof Float32Array
        ? new Uint32Array(t.data.buffer, t.data.byteOffset, n)
        : new Uint32Array(Float32Array.from(t.data).buffer);
    const conv = t.dtype === 'BF16' ? f32BitsToBf16 : f32BitsToF16;
    for (let j = 0; j < n; j++) dst[j] = conv(src[j]);
  });
  return out;
}

/** The bf16 value nearest each f32 (round to nearest even), as f32: what bf16 storage holds. */
export function roundToBf16(data: Float32Array): Float32Array {
  const src = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Float32Array(data.length);
  const dst = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) dst[i] = f32BitsToBf16(src[i]) << 16;
  return out;
}

/** f32 -> raw bf16 bits (round to nearest even). */
export function toBf16Bits(data: Float32Array): Uint16Array {
  const src = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < out.length; i++) out[i] = f32BitsToBf16(src[i]);
  return out;
}
