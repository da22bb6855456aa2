// The simple attention kernels' invocation -> query row: t indexes (b, h, i) with i fastest; kh is the kv head
// of query head h, qo the row's first element in q/out/dOut. Returns for invocations past the last row.
let t = (wid.y * nwg.x + wid.x) * WG + lid;
if (t >= P.B * P.Hq * P.Tq) { return; }
let i = t % P.Tq;
let h = (t / P.Tq) % P.Hq;
let b = t / (P.Tq * P.Hq);
let kh = h / (P.Hq / P.Hkv);
let qo = ((b * P.Tq + i) * P.Hq + h) * D;
