// The flash kernels' workgroup -> (b, kv head kh, block qb of BQ query positions); invocation lid takes query
// head h = kh * REP + lid / BQ at position i (live: i < Tq; a dead invocation still joins every barrier and reads
// row Tq-1, qo). nk: keys query i sees; kEnd: keys the block sees (the tiles past it are skipped).
// Returns when the workgroup is past the last block (uniform across the workgroup, so the barriers stay legal).
let nqb = (P.Tq + BQ - 1u) / BQ;
let grp = wid.y * nwg.x + wid.x;
if (grp >= P.B * P.Hkv * nqb) { return; }
let qb = grp % nqb;
let kh = (grp / nqb) % P.Hkv;
let b = grp / (nqb * P.Hkv);
let h = kh * REP + lid / BQ;
let i = qb * BQ + lid % BQ;
let live = i < P.Tq;
let qo = ((b * P.Tq + min(i, P.Tq - 1u)) * P.Hq + h) * D;
let nk = select(0u, P.qStart + i + 1u, live);
let kEnd = P.qStart + min(qb * BQ + BQ, P.Tq);
