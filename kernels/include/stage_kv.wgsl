// Stages key/value rows $FIRST .. $FIRST + $ROWS - 1 of kv head kh of sequence b into the workgroup arrays Ks, Vs
// ([$ROWS, D] each), zeros from row $END on; every invocation of the workgroup takes a share (WG at a time).
// Expects b, kh, lid in scope; the caller places the barriers.
for (var e = lid; e < $ROWS * D; e += WG) {
  let jr = $FIRST + e / D;
  var kv = 0.0;
  var vv = 0.0;
  if (jr < $END) { let o = ((b * P.kvCap + jr) * P.Hkv + kh) * D + e % D; kv = ld_k(o); vv = ld_v(o); }
  Ks[e] = kv;
  Vs[e] = vv;
}
