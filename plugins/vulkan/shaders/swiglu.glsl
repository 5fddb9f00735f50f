// The SwiGLU gate, applied where a mat-vec / mat-mat / activation rounding reads its input: with FLAG_SWIGLU set the
// input element is silu(x) * up = x / (1 + e^-x) * up, so the gate never needs its own pass.
#define FLAG_SWIGLU 4u  // the push-constant flag bit (mul_mat.comp, mul_mm.comp, round_activation.comp)
vec4 load_input(Vec4s x, uvec2 up, uint flags, uint i) {
    vec4 v = x.v[i];
    if ((flags & FLAG_SWIGLU) == 0u) return v;
    return v / (1.0 + exp(-v)) * Vec4s(up).v[i];
}
