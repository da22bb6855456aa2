// The flash kernels' workgroup -> (sequence b, kv head kh, block qb of BQ query positions); invocation lid takes
// query head h = kh * REP + lid / BQ at index i of its sequence (n rows from row r0, at positions s0 + i; live:
// i < n; a dead invocation still joins every barrier and reads the sequence's last row, qo/li). nk: keys query i
// sees; kEnd: keys the block sees (the tiles past it are skipped). With QROWS sequences have their own row
// counts, so the workgroups are dealt out by a walk over the sequences (Hkv * ceil(n / BQ) each; the grid is the
// bound Hkv * (ceil(Tq / BQ) + B)). Returns when the workgroup is past the last block (uniform across the
// workgroup, so the barriers stay legal).
let grp = wid.y * nwg.x + wid.x;
var b = 0u;
var qb = 0u;
var kh = 0u;
if (QROWS) {
  var g = grp;
  for (; b < P.B; b += 1u) {
    let nb = P.Hkv * ((seq_rows(b) + BQ - 1u) / BQ);
    if (g < nb) { break; }
    g -= nb;
  }
  if (b >= P.B) { return; }
  let nqb = (seq_rows(b) + BQ - 1u) / BQ;
  qb = g % nqb;
  kh = g / nqb;
} else {
  let nqb = (P.Tq + BQ - 1u) / BQ;
  if (grp >= P.B * P.Hkv * nqb) { return; }
  qb = grp % nqb;
  kh = (grp / nqb) % P.Hkv;
  b = grp / (nqb * P.Hkv);
}
let r0 = seq_row0(b);
let n = seq_rows(b);
let s0 = seq_start(b);
let h = kh * REP + lid / BQ;
let i = qb * BQ + lid % BQ;
let live = i < n;
let ii = min(i, n - 1u);
let qo = ((r0 + ii) * P.Hq + h) * D;
let li = P.Hq * r0 + h * n + ii;
let nk = select(0u, s0 + i + 1u, live);
let kEnd = s0 + min(qb * BQ + BQ, n);
