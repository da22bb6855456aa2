// The simple attention kernels' invocation -> query row: t indexes (b, h, i) with i fastest (with QROWS: (h, row)
// with the row fastest, the row's sequence b found by a walk over qr); kh is the kv head of query head h, i the
// row's index in its sequence b (n rows from row r0, at positions s0 + i), qo the row's first element in
// q/out/dOut, li its element in lse/delta. Returns for invocations past the last row.
let t = (wid.y * nwg.x + wid.x) * WG + lid;
if (t >= P.Hq * all_rows()) { return; }
var b = 0u;
var i = 0u;
var h = 0u;
if (QROWS) {
  let r = t % P.Tq;
  h = t / P.Tq;
  // The sequence holding row r: the first b with qr[b + 1] > r (sequences without rows are passed over).
  for (; b + 1u < P.B; b += 1u) { if (u32(ld_qr(b + 1u)) > r) { break; } }
  i = r - seq_row0(b);
} else {
  i = t % P.Tq;
  h = (t / P.Tq) % P.Hq;
  b = t / (P.Tq * P.Hq);
}
let r0 = seq_row0(b);
let n = seq_rows(b);
let s0 = seq_start(b);
let kh = h / (P.Hq / P.Hkv);
let qo = ((r0 + i) * P.Hq + h) * D;
let li = P.Hq * r0 + h * n + i;
