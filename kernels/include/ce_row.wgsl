// The cross-entropy kernels' workgroup -> row r (live: r < rows; a dead workgroup reads the last row so every
// barrier stays in uniform control flow), its label y and first logit o; mx starts at the smallest f32.
let r = wid.y * nwg.x + wid.x;
let live = r < P.rows;
let rr = min(r, P.rows - 1u);
let y = ld_labels(P.labelOff + rr);
let o = P.logitsOff + rr * P.V;
var mx = -3.4028e38;
