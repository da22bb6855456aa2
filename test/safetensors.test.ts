// safetensors parser/writer: round trips, every kind of corruption the parser must reject (naming file and
// tensor), f32 -> bf16/f16 rounding against hand-computed values, an independent nearest-value oracle and torch's
// own bits (test/fixtures/st_python.safetensors, written by torch), and a TS-written file read back by python.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  f32BitsToBf16,
  f32BitsToF16,
  parseSafetensors,
  toBf16Bits,
  toFloat32,
  toInt32,
  writeSafetensors,
  type WriteTensor,
} from '../src/io/safetensors.js';
import { demand } from './_require.js';

const fixtures = join(__dirname, 'fixtures');
const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];
const floatOf = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0];
const u16 = (e: { data: Uint8Array }) => new Uint16Array(e.data.slice().buffer);

/** Builds a file from a hand-written header (possibly lying) and a data section. */
function rawFile(header: unknown, dataBytes: number, lengthOverride?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? json.length), true);
  out.set(json, 8);
  return out;
}

describe('safetensors round trip', () => {
  it('writes and reads back F32, I32, BF16, F16 (values, shapes, metadata, alignment)', () => {
    const f32 = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 100);
    const i32 = Int32Array.from([0, -1, 2147483647, -2147483648, 7, 9]);
    const bf = Float32Array.from([1, -2.5, 0.15625, 2 ** 127, -0]); // exactly representable in bf16
    const f16 = Float32Array.from([1, -2.5, 65504, 6.103515625e-5, 2 ** -24]); // exactly representable in f16
    const tensors: WriteTensor[] = [
      { name: 'b.bf16', dtype: 'BF16', shape: [5], data: bf },
      { name: 'a.f32', dtype: 'F32', shape: [2, 3, 4], data: f32 },
      { name: 'c.i32', dtype: 'I32', shape: [2, 3], data: i32 },
      { name: 'd.f16', dtype: 'F16', shape: [5, 1], data: f16 },
      { name: 'e.empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'f.scalar', dtype: 'F32', shape: [], data: Float32Array.of(4.5) },
    ];
    const bytes = writeSafetensors(tensors, { format: 'pt', note: 'x' });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
    expect(headerText).toMatch(/^\{.*\} {0,7}$/); // padded with spaces, like the reference implementation
    const st = parseSafetensors(bytes, 'rt.safetensors');
    expect(st.metadata).toEqual({ format: 'pt', note: 'x' });
    expect([...st.tensors.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
    const get = (n: string) => st.tensors.get(n)!;
    expect(get('a.f32').shape).toEqual([2, 3, 4]);
    expect(toFloat32(get('a.f32'))).toEqual(f32);
    expect(toInt32(get('c.i32'))).toEqual(i32);
    expect(Object.is(toFloat32(get('b.bf16'))[4], -0)).toBe(true);
    expect(Array.from(toFloat32(get('b.bf16')))).toEqual(Array.from(bf));
    expect(Array.from(toFloat32(get('d.f16')))).toEqual(Array.from(f16));
    expect(get('e.empty').shape).toEqual([0, 4]);
    expect(toFloat32(get('e.empty')).length).toBe(0);
    expect(get('f.scalar').shape).toEqual([]);
    expect(toFloat32(get('f.scalar'))).toEqual(Float32Array.of(4.5));
    // every tensor starts at a multiple of its element size (offsets relative to an 8-aligned data section)
    for (const e of st.tensors.values())
      expect((e.data.byteOffset - 8 - headerLen) % (e.dtype === 'F32' || e.dtype === 'I32' ? 4 : 2)).toBe(0);
    // writing the parsed tensors again gives identical bytes
    const again = writeSafetensors(
      [...st.tensors.values()].map((e) => ({
        name: e.name,
        dtype: e.dtype as WriteTensor['dtype'],
        shape: e.shape,
        data: e.dtype === 'BF16' || e.dtype === 'F16' ? u16(e) : e.dtype === 'I32' ? toInt32(e) : toFloat32(e),
      })),
      st.metadata,
    );
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  });

  it('reads unaligned tensors (copying) and raw bf16 bits unchanged', () => {
    // A file from another writer may put a BF16 tensor first, leaving the F32 after it misaligned.
    const header = { a: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] }, b: { dtype: 'F32', shape: [2], data_offsets: [2, 10] } };
    const f = rawFile(header, 10);
    const start = f.length - 10;
    new Uint8Array(f.buffer).set([0x80, 0x3f], start); // bf16 1.0
    const dv = new DataView(f.buffer);
    dv.setFloat32(start + 2, 1.5, true);
    dv.setFloat32(start + 6, -7.25, true);
    const st = parseSafetensors(f, 'unaligned.safetensors');
    expect(Array.from(toFloat32(st.tensors.get('b')!))).toEqual([1.5, -7.25]);
    expect(Array.from(toFloat32(st.tensors.get('a')!))).toEqual([1]);
    expect(Array.from(u16(st.tensors.get('a')!))).toEqual([0x3f80]);
    expect(Array.from(toBf16Bits(Float32Array.of(1)))).toEqual([0x3f80]);
  });

  it('rejects bad input to the writer', () => {
    expect(() => writeSafetensors([{ name: 'x', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }])).toThrow(
      /tensor 'x'.*4 elements, data has 3/,
    );
    expect(() =>
      writeSafetensors([
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
    ).toThrow(/'x'.*duplicate/);
    expect(() => writeSafetensors([{ name: 'i', dtype: 'I32', shape: [1], data: Float32Array.of(1.5) }])).toThrow(/'i'.*not an integer/);
  });
});

describe('safetensors validation names the file and the tensor', () => {
  const good = () =>
    writeSafetensors([
      { name: 'model.norm.weight', dtype: 'F32', shape: [4], data: Float32Array.of(1, 2, 3, 4) },
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2, 4], data: new Float32Array(8) },
    ]);

  it('a truncated file', () => {
    const b = good();
    expect(() => parseSafetensors(b.subarray(0, b.length - 4), 'model.safetensors')).toThrow(
      /^model\.safetensors: tensor '.*': offsets \[\d+, \d+\] exceed data size \d+ \(truncated file\?\)/,
    );
    expect(() => parseSafetensors(b.subarray(0, 30), 'model.safetensors')).toThrow(/model\.safetensors: header length \d+ exceeds/);
    expect(() => parseSafetensors(b.subarray(0, 5), 'model.safetensors')).toThrow(/model\.safetensors: file is 5 bytes/);
  });

  it('a header lying about offsets', () => {
    const f = rawFile({ 'model.norm.weight': { dtype: 'F32', shape: [4], data_offsets: [10, 26] } }, 16);
    expect(() => parseSafetensors(f, 'model.safetensors')).toThrow(
      "model.safetensors: tensor 'model.norm.weight': offsets [10, 26] exceed data size 16",
    );
    const r = rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8);
    expect(() => parseSafetensors(r, 'r.safetensors')).toThrow(/r\.safetensors: tensor 'w': offsets \[8, 4\] are reversed/);
  });

  it('a byte length that does not match dtype size x shape', () => {
    const f = rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8);
    expect(() => parseSafetensors(f, 'a.safetensors')).toThrow(
      "a.safetensors: tensor 'w': F32[3] needs 12 bytes but offsets [0, 8] hold 8",
    );
    const g = rawFile({ w: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 16] } }, 16);
    expect(() => parseSafetensors(g, 'b.safetensors')).toThrow(/tensor 'w': BF16\[2, 2\] needs 8 bytes/);
  });

  it('overlapping offsets, holes and trailing bytes', () => {
    const o = rawFile(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      12,
    );
    expect(() => parseSafetensors(o, 'o.safetensors')).toThrow("o.safetensors: tensor 'b' at [4, 12] overlaps tensor 'a' ending at 8");
    const h = rawFile(
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
      12,
    );
    expect(() => parseSafetensors(h, 'h.safetensors')).toThrow(/h\.safetensors: 4 unused bytes before tensor 'b'/);
    const t = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 12);
    expect(() => parseSafetensors(t, 't.safetensors')).toThrow(/t\.safetensors: tensors cover 4 bytes but the data section has 12/);
  });

  it('a bad header length, bad JSON, unknown dtype, bad shape', () => {
    const f = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 10_000);
    expect(() => parseSafetensors(f, 'x.safetensors')).toThrow(/x\.safetensors: header length 10000 exceeds/);
    const z = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 0);
    expect(() => parseSafetensors(z, 'z.safetensors')).toThrow(/z\.safetensors: header does not start with '\{'/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
    expect(() => parseSafetensors(huge, 'huge.safetensors')).toThrow(/huge\.safetensors: header length/);
    const bad = rawFile({ a: 1 }, 0);
    bad[bad.length - 1] = 0x2c; // break the closing brace
    expect(() => parseSafetensors(bad, 'j.safetensors')).toThrow(/j\.safetensors: header is not valid JSON/);
    expect(() => parseSafetensors(rawFile({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1), 'd.safetensors')).toThrow(
      `d.safetensors: tensor 'w': unknown dtype "Q4"`,
    );
    expect(() => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), 's.safetensors')).toThrow(
      /s\.safetensors: tensor 'w': shape \[-1\]/,
    );
    expect(() => parseSafetensors(rawFile({ __metadata__: { step: 3 } }, 0), 'm.safetensors')).toThrow(
      /m\.safetensors: __metadata__ value 'step' is not a string/,
    );
  });
});

describe('f32 -> bf16 / f16 rounding', () => {
  it('bf16: hand-computed values (round to nearest even, never NaN from a number)', () => {
    const cases: [number, number][] = [
      [0x3f800000, 0x3f80], // 1
      [0x3f808000, 0x3f80], // 1 + 2^-8: exact tie, mantissa 0 is even -> down
      [0x3f818000, 0x3f82], // 1 + 3*2^-8: exact tie, mantissa 1 is odd -> up
      [0x3f808001, 0x3f81], // just above the tie -> up
      [0x3f807fff, 0x3f80], // just below the tie -> down
      [0xbf808000, 0xbf80], // negative tie -> even
      [0x7f7fffff, 0x7f80], // f32 max rounds to +inf, not NaN
      [0xff7fffff, 0xff80], // -max -> -inf
      [0x7f800000, 0x7f80], // inf
      [0x80000000, 0x8000], // -0
      [0x00000001, 0x0000], // smallest subnormal -> 0
      [0x007fffff, 0x0080], // largest subnormal rounds up to the smallest normal
      [0x7fc00000, 0x7fc0], // NaN -> canonical NaN
      [0xffc00001, 0x7fc0], // NaN with sign and payload -> canonical (as torch)
      [0x7f800001, 0x7fc0], // signalling NaN must not become inf
      [0x40490fdb, 0x4049], // pi -> 3.140625
    ];
    for (const [f, b] of cases) expect(f32BitsToBf16(f).toString(16), `0x${f.toString(16)}`).toBe(b.toString(16));
  });

  it('f16: hand-computed values', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519, 0x7bff],
      [65520, 0x7c00],
      [1e6, 0x7c00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [3 * 2 ** -26, 0x0001],
      [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [-0, 0x8000],
      [Infinity, 0x7c00],
      [NaN, 0x7e00],
    ];
    for (const [x, h] of cases) expect(f32BitsToF16(bitsOf(x)).toString(16), String(x)).toBe(h.toString(16));
  });

  it('bf16 and f16 agree with a nearest-representable-value oracle on random bit patterns', () => {
    // Oracle, independent of the bit tricks: the two representable neighbours, whichever is nearer, ties to even.
    const bf16Oracle = (bits: number) => {
      const x = floatOf(bits);
      if (Number.isNaN(x)) return 0x7fc0;
      const lo = (bits >>> 16) & 0xffff;
      const loV = floatOf(lo << 16);
      const hiV = (lo & 0x7fff) === 0x7f7f ? Math.sign(x) * 2 ** 128 : floatOf(((lo + 1) << 16) >>> 0); // next away from zero
      const dLo = Math.abs(x - loV),
        dHi = Math.abs(hiV - x);
      return dLo < dHi || (dLo === dHi && (lo & 1) === 0) ? lo : (lo + 1) & 0xffff;
    };
    const half: number[] = [];
    for (let h = 0; h < 0x7c00; h++)
      half.push(h === 0 ? 0 : h >> 10 ? (1 + (h & 1023) / 1024) * 2 ** ((h >> 10) - 15) : (h & 1023) * 2 ** -24);
    half.push(65536); // the rounding boundary of +inf (0x7c00)
    const f16Oracle = (bits: number) => {
      const x = floatOf(bits);
      if (Number.isNaN(x)) return ((bits >>> 16) & 0x8000) | 0x7e00;
      const sign = (bits >>> 16) & 0x8000,
        a = Math.abs(x);
      if (a >= 65536) return sign | 0x7c00;
      let lo = 0,
        hi = half.length - 1; // largest h with half[h] <= a
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (half[mid] <= a) lo = mid;
        else hi = mid - 1;
      }
      if (half[lo] === a || lo === half.length - 1) return sign | lo;
      const dLo = a - half[lo],
        dHi = half[lo + 1] - a;
      return sign | (dLo < dHi || (dLo === dHi && (lo & 1) === 0) ? lo : lo + 1);
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        expect(f32BitsToBf16(bits)).toBe(bf16Oracle(bits));
        expect(f32BitsToF16(bits)).toBe(f16Oracle(bits));
      }),
      { numRuns: 20000 },
    );
    // and around the f16 normal/subnormal boundary and the bf16 ties specifically
    fc.assert(
      fc.property(fc.integer({ min: 0x33000000, max: 0x38800000 }), (bits) => {
        expect(f32BitsToF16(bits)).toBe(f16Oracle(bits));
      }),
      { numRuns: 20000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.boolean(), (hi, up) => {
        const bits = ((hi << 16) | (up ? 0x8000 : 0x7fff)) >>> 0;
        expect(f32BitsToBf16(bits)).toBe(bf16Oracle(bits));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('files written by python / torch', () => {
  it('st_python.safetensors (written by torch) reads back identically, and our bf16/f16 rounding matches torch bit for bit', () => {
    const st = parseSafetensors(new Uint8Array(readFileSync(join(fixtures, 'st_python.safetensors'))), 'st_python.safetensors');
    expect(st.metadata).toEqual({ format: 'pt', writer: 'torch' });
    const t = (n: string) => {
      const e = st.tensors.get(n);
      if (!e) throw new Error(`st_python.safetensors has no '${n}'`);
      return e;
    };
    const same = (a: Float32Array, b: Float32Array) =>
      expect(Array.from(new Uint32Array(a.buffer))).toEqual(Array.from(new Uint32Array(b.buffer)));
    // decoding: torch's own bf16 -> f32 / f16 -> f32 results, stored as F32
    same(toFloat32(t('bf16')), toFloat32(t('bf16_as_f32')));
    const f16 = toFloat32(t('f16')),
      f16Ref = toFloat32(t('f16_as_f32'));
    for (let i = 0; i < f16.length; i++)
      expect(Object.is(f16[i], f16Ref[i]) || (Number.isNaN(f16[i]) && Number.isNaN(f16Ref[i])), `f16[${i}]`).toBe(true);
    // encoding: our f32 -> bf16 / f16 equals torch's .to(bfloat16) / .to(float16) bits
    // (NaN bits are not significant and torch itself is inconsistent: its vectorized CPU path writes 0xFFFF, its
    // scalar path 0x7FC0; we write 0x7FC0. So a NaN only has to stay a NaN.)
    const isNanBits = (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
    const ours = toBf16Bits(toFloat32(t('bf16_src'))),
      torchBits = u16(t('bf16'));
    expect(torchBits.some(isNanBits)).toBe(true);
    expect(Array.from(ours, (h, i) => (isNanBits(torchBits[i]) && isNanBits(h) ? -1 : h))).toEqual(
      Array.from(torchBits, (h) => (isNanBits(h) ? -1 : h)),
    );
    const src = new Uint32Array(toFloat32(t('f16_src')).buffer);
    expect(Array.from(src, f32BitsToF16)).toEqual(Array.from(u16(t('f16'))));
    // integers and other dtypes
    expect(t('i32').shape).toEqual([2, 3]);
    expect(Array.from(toInt32(t('i32')))).toEqual([1, -2, 3, 2147483647, -2147483648, 0]);
    expect(Array.from(toFloat32(t('i64')))).toEqual([0, -1, 5, 2 ** 40, -(2 ** 33)]);
    expect(() => toInt32(t('i64'))).toThrow(/tensor 'i64': element 3 = 1099511627776 does not fit in int32/);
    expect(Array.from(toFloat32(t('u8')))).toEqual([0, 1, 128, 255]);
    expect(Array.from(toFloat32(t('i8')))).toEqual([-128, 0, 127]);
    expect(Array.from(toFloat32(t('f64')))).toEqual([Math.fround(0.1), -Infinity]);
    expect(t('empty').shape).toEqual([0, 3]);
    expect(t('scalar').shape).toEqual([]);
    expect(Array.from(toFloat32(t('scalar')))).toEqual([2.5]);
    expect(t('f32').shape).toEqual([3, 4]);
  });

  const py = '/usr/bin/python3';
  const hasTorch = spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
  demand('torch', hasTorch, `${py} cannot import torch`);
  if (!hasTorch) console.warn(`skipping: ${py} with torch is not available`);
  const tmp = mkdtempSync(join(tmpdir(), 'latentlm-st-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.skipIf(!hasTorch)('a file we write loads in python (torch) with identical values', () => {
    const a = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 3);
    const file = join(tmp, 'ts.safetensors');
    writeFileSync(
      file,
      writeSafetensors(
        [
          { name: 'a', dtype: 'F32', shape: [3, 4], data: a },
          { name: 'b', dtype: 'BF16', shape: [12], data: a },
          { name: 'c', dtype: 'F16', shape: [2, 6], data: a },
          { name: 'd', dtype: 'I32', shape: [2], data: Int32Array.of(-3, 1 << 30) },
        ],
        { format: 'pt' },
      ),
    );
    const script = [
      'import sys, json, torch',
      `sys.path.insert(0, ${JSON.stringify(join(__dirname, '..', 'scripts', 'reference'))})`,
      'from qwen2_ref import load_safetensors',
      `t, m = load_safetensors(${JSON.stringify(file)})`,
      'print(json.dumps({"meta": m, "a": t["a"].tolist(), "b": t["b"].view(torch.int16).tolist(), "b_ref": t["a"].to(torch.bfloat16).view(torch.int16).flatten().tolist(),',
      '  "c": t["c"].view(torch.int16).flatten().tolist(), "c_ref": t["a"].to(torch.float16).view(torch.int16).flatten().tolist(), "d": t["d"].tolist(), "shapes": {k: list(v.shape) for k, v in t.items()}}))',
    ].join('\n');
    const r = spawnSync(py, ['-c', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.meta).toEqual({ format: 'pt' });
    expect(out.shapes).toEqual({ a: [3, 4], b: [12], c: [2, 6], d: [2] });
    expect(out.a.flat()).toEqual(Array.from(a));
    expect(out.b).toEqual(out.b_ref); // torch's own rounding of the same f32 values
    expect(out.c).toEqual(out.c_ref);
    expect(out.d).toEqual([-3, 1 << 30]);
  });
});
