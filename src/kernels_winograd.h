/*  kernels_winograd.h -- Winograd F(4x4, 5x5) convolution (Lavin & Gray
 *  2015) for NHWC tensors: forward, input gradient and weight gradient with
 *  the same transforms, written once over a small vector vocabulary.
 *
 *  PRIVATE: included by kernels_simd.h (AVX2, SSE, NEON) and by kernels_avx512.c
 *  (which keeps its own hand-written direct kernels but instantiates these
 *  with zmm vectors), once per file, after they define
 *    S_TARGET, V, VW, VZERO() VLOAD(p) VSTORE(p, v) VSET1(x) VFMA(a, b, c)
 *    VADD(a, b) VSUB(a, b) VMUL(a, b)        as in kernels_simd.h
 *    S_WG_T, S_WG_NV   forward GEMM block: T tiles x NV vectors of output channels
 *    S_WG_TX, S_WG_NC  input-gradient GEMM block: TX tiles x NC vectors of input channels
 *    S_WG_CB           weight-gradient GEMM block: CB input channels x S_WG_NV vectors
 *  and get s_wg_forward / s_wg_backward with kernels.h's
 *  conv_forward_winograd / conv_backward_winograd contracts.
 *
 *  Why: conv2 of the CNN (16 -> 32 channels, 5x5, 12x12 -> 8x8) ran at the
 *  core's FMA peak as a direct convolution; F(4x4, 5x5) computes a 4x4
 *  output tile from an 8x8 input tile with 64 products per (input, output)
 *  channel pair instead of 4 * 4 * 25 = 400, so the GEMM part of each pass
 *  has 6.25x fewer flops; the transforms are per tile and channel, not per
 *  channel pair, and cost less than the GEMMs at these channel counts.
 *
 *  The matrices (alpha = m + r - 1 = 8 points 0, 1, -1, 2, -2, 1/2, -1/2
 *  and infinity; Cook-Toom).  For 1-D correlation y_i = sum_k g_k d_{i+k}
 *  (i < 4, k < 5, d of length 8), linear convolution s = g * h of
 *  polynomials of degree 4 and 3 is s = E_s^-1 [(E_g g) (.) (E_h h)] with
 *  E_x the evaluation of a polynomial's coefficients at the 8 points (the
 *  point at infinity takes the leading coefficient); correlation is its
 *  transpose, so
 *      y = A^T [(G g) (.) (B^T d)],  A^T = E_h^T,  G = E_g,  B^T = E_s^-T,
 *  and any row i of G may be scaled by s_i if row i of B^T is scaled by
 *  1 / s_i.  The scales below (powers of two where possible) leave B^T with
 *  +-1 entries, which cost an add instead of an FMA, and every entry of B^T
 *  and A^T exact in binary; G's ninths and 45ths are rounded once, in the
 *  weight transform.  Checked in exact rational arithmetic and by the tests.
 *  Two dimensions apply the 1-D transform to columns, then rows:
 *      forward      Y  = A^T [ (G g G^T) (.) (B^T d B) ] A
 *      input grad   dd = B [ (G g G^T) (.) (A dY A^T) ] B^T   (tiles overlap: added)
 *      weight grad  dg = G^T [ sum over tiles (B^T d B) (.) (A dY A^T) ] G
 *  and the sums over channels become, per transform point xi (64 of them),
 *  one small GEMM: M = U x V ([tiles][C] x [C][OC]), dU = Z x V^T
 *  ([tiles][OC] x [OC][C]), dV += U^T x Z ([C][tiles] x [tiles][OC]), where
 *  U = B^T d B, V = G g G^T, Z = A dY A^T.  Transforms run on VW channels at
 *  once (NHWC keeps a pixel's channels contiguous).
 *
 *  Scratch (caller's, bn_winograd_scratch_floats(C, OC) floats, kernels.h):
 *  the transformed weights V [64][C][OC] (V^T [64][OC][C] in backward), the
 *  weight-gradient accumulator dV [64][C][OC] (backward only), and for one
 *  chunk of CH = BN_WINOGRAD_CHUNK tiles U [CH][64][C], M or Z [CH][64][OC]
 *  and dU [CH][64][C]: 64 * (2 C OC + CH (2 C + OC)) floats, 512 KiB for
 *  conv2.  Backward recomputes U chunk by chunk instead of keeping the
 *  forward's (that would take 64 * B * (OH / 4) * (OW / 4) * C floats, 3.75
 *  MiB at batch 60, and tie backward to the forward's buffers); the input
 *  transform is the cheapest part of the pass.
 *
 *  Fits when K == 5, OH and OW are multiples of 4, C is a multiple of
 *  S_WG_NC * VW and of S_WG_CB, OC a multiple of S_WG_NV * VW; any other
 *  shape returns false having touched nothing.
 */
#ifndef BN_KERNELS_WINOGRAD_H
#define BN_KERNELS_WINOGRAD_H

#include <string.h>

enum { S_WG_A = 8, S_WG_XI = S_WG_A * S_WG_A, S_WG_M = 4, S_WG_R = 5, S_WG_CH = BN_WINOGRAD_CHUNK,
       S_WG_PAD = BN_WINOGRAD_PAD };

_Static_assert(S_WG_CH % S_WG_T == 0 && S_WG_CH % S_WG_TX == 0,
               "the GEMM blocks must divide the chunk");

/* B^T [8][8]: rows are the transform points 0, 1, -1, 2, -2, 1/2, -1/2, inf. */
static const float s_wg_bt[S_WG_A * S_WG_A] = {
    1,  0, -21 / 4.0f,   0,         21 / 4.0f,  0,         -1, 0,
    0, -1, -1,           17 / 4.0f, 17 / 4.0f, -1,         -1, 0,
    0,  1, -1,          -17 / 4.0f, 17 / 4.0f,  1,         -1, 0,
    0,  2,  1,          -10,        -5,          8,          4, 0,
    0, -2,  1,           10,        -5,         -8,          4, 0,
    0,  4,  8,          -5,         -10,         1,          2, 0,
    0, -4,  8,           5,         -10,        -1,          2, 0,
    0, -1,  0,           21 / 4.0f,  0,         -21 / 4.0f,  0, 1,
};

/* A^T [4][8]: powers 0..3 of the points; infinity feeds only the last output. */
static const float s_wg_at[S_WG_M * S_WG_A] = {
    1,  1,  1,  1,  1,  1,          1,           0,
    0,  1, -1,  2, -2,  0.5f,      -0.5f,        0,
    0,  1,  1,  4,  4,  0.25f,      0.25f,       0,
    0,  1, -1,  8, -8,  0.125f,    -0.125f,      1,
};

/* G [8][5]: the kernel's polynomial at the points, row i divided by B^T's scale. */
static const float s_wg_g[S_WG_A * S_WG_R] = {
    1,            0,             0,            0,            0,
    2 / 9.0f,     2 / 9.0f,      2 / 9.0f,     2 / 9.0f,     2 / 9.0f,
    2 / 9.0f,    -2 / 9.0f,      2 / 9.0f,    -2 / 9.0f,     2 / 9.0f,
    1 / 360.0f,   1 / 180.0f,    1 / 90.0f,    1 / 45.0f,    2 / 45.0f,
    1 / 360.0f,  -1 / 180.0f,    1 / 90.0f,   -1 / 45.0f,    2 / 45.0f,
    16 / 45.0f,   8 / 45.0f,     4 / 45.0f,    2 / 45.0f,    1 / 45.0f,
    16 / 45.0f,  -8 / 45.0f,     4 / 45.0f,   -2 / 45.0f,    1 / 45.0f,
    0,            0,             0,            0,            1,
};

#define S_WG_INLINE S_TARGET static inline __attribute__((always_inline))

/* y[i * ys] = sum_j m(i, j) x[j * xs], i < ny, j < nx, where m(i, j) is
 * tab[i * nx + j], or tab[j * ny + i] with tr (the transpose of an nx x ny
 * table).  Always inlined with constant tables and sizes and fully unrolled,
 * so the compiler folds the entries: zeros cost nothing, +-1 an add. */
S_WG_INLINE void s_wg_apply(V *y, int ys, const V *x, int xs, const float *tab, int ny, int nx,
                            bool tr)
{
    _Pragma("GCC unroll 8")
    for (int i = 0; i < ny; i++) {
        V a = VZERO();
        bool first = true;
        _Pragma("GCC unroll 8")
        for (int j = 0; j < nx; j++) {
            const float c = tr ? tab[j * ny + i] : tab[i * nx + j];
            const V xj = x[j * xs];
            if (c == 0.0f)
                continue;
            if (first)
                a = c == 1.0f ? xj : c == -1.0f ? VSUB(VZERO(), xj) : VMUL(VSET1(c), xj);
            else
                a = c == 1.0f ? VADD(a, xj) : c == -1.0f ? VSUB(a, xj) : VFMA(VSET1(c), xj, a);
            first = false;
        }
        y[i * ys] = a;
    }
}

/* u[xi * us] = (B^T d B)[xi / 8][xi % 8] for the 8 x 8 pixels d at src (row
 * stride rs, pixel stride ps floats), VW channels. */
S_WG_INLINE void s_wg_input_tf(float *u, size_t us, const float *src, size_t rs, size_t ps)
{
    V t[S_WG_A][S_WG_A], d[S_WG_A], r[S_WG_A];
    for (int j = 0; j < S_WG_A; j++) {              /* t = B^T d, column by column */
        for (int i = 0; i < S_WG_A; i++)
            d[i] = VLOAD(src + i * rs + j * ps);
        s_wg_apply(&t[0][j], S_WG_A, d, 1, s_wg_bt, S_WG_A, S_WG_A, false);
    }
    for (int i = 0; i < S_WG_A; i++) {              /* (t B)[i][.] = B^T t[i][.] */
        s_wg_apply(r, 1, t[i], 1, s_wg_bt, S_WG_A, S_WG_A, false);
        for (int j = 0; j < S_WG_A; j++)
            VSTORE(u + (size_t) (i * S_WG_A + j) * us, r[j]);
    }
}

/* The adjoint: dst's 8 x 8 pixels += B m B^T, m[xi] at m + xi * ms. */
S_WG_INLINE void s_wg_input_grad_tf(float *dst, size_t rs, size_t ps, const float *m, size_t ms)
{
    V t[S_WG_A][S_WG_A], x[S_WG_A], r[S_WG_A];
    for (int j = 0; j < S_WG_A; j++) {              /* t = B m */
        for (int i = 0; i < S_WG_A; i++)
            x[i] = VLOAD(m + (size_t) (i * S_WG_A + j) * ms);
        s_wg_apply(&t[0][j], S_WG_A, x, 1, s_wg_bt, S_WG_A, S_WG_A, true);
    }
    for (int i = 0; i < S_WG_A; i++) {              /* (t B^T)[i][.] = B t[i][.] */
        s_wg_apply(r, 1, t[i], 1, s_wg_bt, S_WG_A, S_WG_A, true);
        float *d = dst + i * rs;
        for (int j = 0; j < S_WG_A; j++)
            VSTORE(d + j * ps, VADD(VLOAD(d + j * ps), r[j]));
    }
}

/* The 4 x 4 outputs at dst (row stride rs, pixel stride ps) = A^T m A. */
S_WG_INLINE void s_wg_output_tf(float *dst, size_t rs, size_t ps, const float *m, size_t ms)
{
    V t[S_WG_M][S_WG_A], x[S_WG_A], r[S_WG_M];
    for (int j = 0; j < S_WG_A; j++) {              /* t = A^T m */
        for (int i = 0; i < S_WG_A; i++)
            x[i] = VLOAD(m + (size_t) (i * S_WG_A + j) * ms);
        s_wg_apply(&t[0][j], S_WG_A, x, 1, s_wg_at, S_WG_M, S_WG_A, false);
    }
    for (int i = 0; i < S_WG_M; i++) {              /* (t A)[i][.] = A^T t[i][.] */
        s_wg_apply(r, 1, t[i], 1, s_wg_at, S_WG_M, S_WG_A, false);
        for (int j = 0; j < S_WG_M; j++)
            VSTORE(dst + i * rs + j * ps, r[j]);
    }
}

/* Its adjoint: z[xi * zs] = (A g A^T)[xi / 8][xi % 8] for the 4 x 4 output
 * gradients g at src. */
S_WG_INLINE void s_wg_output_grad_tf(float *z, size_t zs, const float *src, size_t rs, size_t ps)
{
    V t[S_WG_A][S_WG_M], x[S_WG_M], r[S_WG_A];
    for (int j = 0; j < S_WG_M; j++) {              /* t = A g */
        for (int i = 0; i < S_WG_M; i++)
            x[i] = VLOAD(src + i * rs + j * ps);
        s_wg_apply(&t[0][j], S_WG_M, x, 1, s_wg_at, S_WG_A, S_WG_M, true);
    }
    for (int i = 0; i < S_WG_A; i++) {              /* (t A^T)[i][.] = A t[i][.] */
        s_wg_apply(r, 1, t[i], 1, s_wg_at, S_WG_A, S_WG_M, true);
        for (int j = 0; j < S_WG_A; j++)
            VSTORE(z + (size_t) (i * S_WG_A + j) * zs, r[j]);
    }
}

/* v[xi * vs] = (G g G^T)[xi / 8][xi % 8] for the 5 x 5 taps g at src + (ki * 5 + kj) * ts. */
S_WG_INLINE void s_wg_weight_tf(float *v, size_t vs, const float *src, size_t ts)
{
    V t[S_WG_A][S_WG_R], x[S_WG_R], r[S_WG_A];
    for (int j = 0; j < S_WG_R; j++) {              /* t = G g */
        for (int i = 0; i < S_WG_R; i++)
            x[i] = VLOAD(src + (size_t) (i * S_WG_R + j) * ts);
        s_wg_apply(&t[0][j], S_WG_R, x, 1, s_wg_g, S_WG_A, S_WG_R, false);
    }
    for (int i = 0; i < S_WG_A; i++) {              /* (t G^T)[i][.] = G t[i][.] */
        s_wg_apply(r, 1, t[i], 1, s_wg_g, S_WG_A, S_WG_R, false);
        for (int j = 0; j < S_WG_A; j++)
            VSTORE(v + (size_t) (i * S_WG_A + j) * vs, r[j]);
    }
}

/* Its adjoint: the 25 taps out[k] = (G^T m G)[k / 5][k % 5], m[xi] at m + xi * ms. */
S_WG_INLINE void s_wg_weight_grad_tf(V out[S_WG_R * S_WG_R], const float *m, size_t ms)
{
    V t[S_WG_R][S_WG_A], x[S_WG_A];
    for (int j = 0; j < S_WG_A; j++) {              /* t = G^T m */
        for (int i = 0; i < S_WG_A; i++)
            x[i] = VLOAD(m + (size_t) (i * S_WG_A + j) * ms);
        s_wg_apply(&t[0][j], S_WG_A, x, 1, s_wg_g, S_WG_R, S_WG_A, true);
    }
    for (int i = 0; i < S_WG_R; i++)                /* (t G)[i][.] = G^T t[i][.] */
        s_wg_apply(out + i * S_WG_R, 1, t[i], 1, s_wg_g, S_WG_R, S_WG_A, true);
}

/* ---- the GEMMs, per transform point, over one chunk of CH tiles -------- */

/* m[t][xi][oc] = sum_c u[t][xi][c] v[xi][c][oc]: S_WG_T tiles x S_WG_NV
 * vectors of accumulators across the C input channels. */
S_TARGET static void s_wg_gemm_fwd(float *m, const float *u, const float *v, int nt, int C, int OC)
{
    const size_t us = (size_t) S_WG_XI * C + S_WG_PAD, ms = (size_t) S_WG_XI * OC + S_WG_PAD;
    for (int xi = 0; xi < S_WG_XI; xi++)
        for (int t0 = 0; t0 < nt; t0 += S_WG_T)
            for (int oc0 = 0; oc0 < OC; oc0 += S_WG_NV * VW) {
                V acc[S_WG_T][S_WG_NV];
                for (int j = 0; j < S_WG_T; j++)
                    for (int q = 0; q < S_WG_NV; q++)
                        acc[j][q] = VZERO();
                const float *x = u + t0 * us + (size_t) xi * C;
                const float *w = v + (size_t) xi * C * OC + oc0;
                for (int c = 0; c < C; c++, w += OC) {
                    V wv[S_WG_NV];
                    for (int q = 0; q < S_WG_NV; q++)
                        wv[q] = VLOAD(w + VW * q);
                    for (int j = 0; j < S_WG_T; j++) {
                        const V s = VSET1(x[j * us + c]);
                        for (int q = 0; q < S_WG_NV; q++)
                            acc[j][q] = VFMA(s, wv[q], acc[j][q]);
                    }
                }
                float *o = m + t0 * ms + (size_t) xi * OC + oc0;
                for (int j = 0; j < S_WG_T; j++)
                    for (int q = 0; q < S_WG_NV; q++)
                        VSTORE(o + j * ms + VW * q, acc[j][q]);
            }
}

/* du[t][xi][c] = sum_oc z[t][xi][oc] vt[xi][oc][c]: S_WG_TX tiles x S_WG_NC
 * vectors across the OC output channels. */
S_TARGET static void s_wg_gemm_dx(float *du, const float *z, const float *vt, int nt, int C, int OC)
{
    const size_t us = (size_t) S_WG_XI * C + S_WG_PAD, zs = (size_t) S_WG_XI * OC + S_WG_PAD;
    for (int xi = 0; xi < S_WG_XI; xi++)
        for (int t0 = 0; t0 < nt; t0 += S_WG_TX)
            for (int c0 = 0; c0 < C; c0 += S_WG_NC * VW) {
                V acc[S_WG_TX][S_WG_NC];
                for (int j = 0; j < S_WG_TX; j++)
                    for (int q = 0; q < S_WG_NC; q++)
                        acc[j][q] = VZERO();
                const float *g = z + t0 * zs + (size_t) xi * OC;
                const float *w = vt + (size_t) xi * OC * C + c0;
                for (int oc = 0; oc < OC; oc++, w += C) {
                    V wv[S_WG_NC];
                    for (int q = 0; q < S_WG_NC; q++)
                        wv[q] = VLOAD(w + VW * q);
                    for (int j = 0; j < S_WG_TX; j++) {
                        const V s = VSET1(g[j * zs + oc]);
                        for (int q = 0; q < S_WG_NC; q++)
                            acc[j][q] = VFMA(s, wv[q], acc[j][q]);
                    }
                }
                float *o = du + t0 * us + (size_t) xi * C + c0;
                for (int j = 0; j < S_WG_TX; j++)
                    for (int q = 0; q < S_WG_NC; q++)
                        VSTORE(o + j * us + VW * q, acc[j][q]);
            }
}

/* dv[xi][c][oc] += sum_t u[t][xi][c] z[t][xi][oc]: S_WG_CB input channels x
 * S_WG_NV vectors of output channels across the chunk's tiles. */
S_TARGET static void s_wg_gemm_dw(float *dv, const float *u, const float *z, int nt, int C, int OC)
{
    const size_t us = (size_t) S_WG_XI * C + S_WG_PAD, zs = (size_t) S_WG_XI * OC + S_WG_PAD;
    for (int xi = 0; xi < S_WG_XI; xi++)
        for (int c0 = 0; c0 < C; c0 += S_WG_CB)
            for (int oc0 = 0; oc0 < OC; oc0 += S_WG_NV * VW) {
                float *d = dv + ((size_t) xi * C + c0) * OC + oc0;
                V acc[S_WG_CB][S_WG_NV];
                for (int i = 0; i < S_WG_CB; i++)
                    for (int q = 0; q < S_WG_NV; q++)
                        acc[i][q] = VLOAD(d + (size_t) i * OC + VW * q);
                const float *x = u + (size_t) xi * C + c0;
                const float *g = z + (size_t) xi * OC + oc0;
                for (int t = 0; t < nt; t++, x += us, g += zs) {
                    V gv[S_WG_NV];
                    for (int q = 0; q < S_WG_NV; q++)
                        gv[q] = VLOAD(g + VW * q);
                    for (int i = 0; i < S_WG_CB; i++) {
                        const V s = VSET1(x[i]);
                        for (int q = 0; q < S_WG_NV; q++)
                            acc[i][q] = VFMA(s, gv[q], acc[i][q]);
                    }
                }
                for (int i = 0; i < S_WG_CB; i++)
                    for (int q = 0; q < S_WG_NV; q++)
                        VSTORE(d + (size_t) i * OC + VW * q, acc[i][q]);
            }
}

/* ---- the passes --------------------------------------------------------- */

static bool s_wg_fits(int H, int W, int C, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1;
    return K == S_WG_R && OH > 0 && OW > 0 && OH % S_WG_M == 0 && OW % S_WG_M == 0
           && C % (S_WG_NC * VW) == 0 && C % S_WG_CB == 0 && OC % (S_WG_NV * VW) == 0;
}

/* Tile t of the batch (row-major over b, tile row, tile column): the offset
 * of its first pixel in an [B][rows][cols][ch] tensor. */
static size_t s_wg_tile_at(int t, int TH, int TW, int rows, int cols, int ch)
{
    const int b = t / (TH * TW), ty = t / TW % TH, tx = t % TW;
    return (((size_t) b * rows + S_WG_M * ty) * cols + S_WG_M * tx) * ch;
}

/* U for tiles t0 .. t0 + n of the input; tiles n .. npad zeroed (they pad
 * the last GEMM block and must contribute nothing). */
S_TARGET static void s_wg_input_chunk(float *u, const float *in, int t0, int n, int npad,
                                      int TH, int TW, int H, int W, int C)
{
    const size_t us = (size_t) S_WG_XI * C + S_WG_PAD;
    for (int t = 0; t < n; t++) {
        const float *src = in + s_wg_tile_at(t0 + t, TH, TW, H, W, C);
        for (int c = 0; c < C; c += VW)
            s_wg_input_tf(u + t * us + c, (size_t) C, src + c, (size_t) W * C, (size_t) C);
    }
    memset(u + n * us, 0, (size_t) (npad - n) * us * sizeof(float));
}

S_TARGET static bool s_wg_forward(float *out, float *scratch, const float *in,
                                  const float *weight_hwio, int B, int H, int W, int C, int OC,
                                  int K)
{
    if (!s_wg_fits(H, W, C, OC, K))
        return false;
    const int OH = H - K + 1, OW = W - K + 1, TH = OH / S_WG_M, TW = OW / S_WG_M;
    const int NT = B * TH * TW;
    const size_t us = (size_t) S_WG_XI * C + S_WG_PAD, ms = (size_t) S_WG_XI * OC + S_WG_PAD;
    float *v = scratch, *u = v + (size_t) S_WG_XI * C * OC, *m = u + S_WG_CH * us;
    for (int c = 0; c < C; c++)                 /* V [64][C][OC] from HWIO, over OC */
        for (int oc = 0; oc < OC; oc += VW)
            s_wg_weight_tf(v + (size_t) c * OC + oc, (size_t) C * OC,
                           weight_hwio + (size_t) c * OC + oc, (size_t) C * OC);
    for (int t0 = 0; t0 < NT; t0 += S_WG_CH) {
        const int n = BN_MIN(S_WG_CH, NT - t0), npad = (n + S_WG_T - 1) / S_WG_T * S_WG_T;
        s_wg_input_chunk(u, in, t0, n, npad, TH, TW, H, W, C);
        s_wg_gemm_fwd(m, u, v, npad, C, OC);
        for (int t = 0; t < n; t++) {
            float *dst = out + s_wg_tile_at(t0 + t, TH, TW, OH, OW, OC);
            for (int oc = 0; oc < OC; oc += VW)
                s_wg_output_tf(dst + oc, (size_t) OW * OC, (size_t) OC, m + t * ms + oc,
                               (size_t) OC);
        }
    }
    return true;
}

S_TARGET static bool s_wg_backward(float *din, float *dweight_ohwi, float *scratch,
                                   const float *dout, const float *in, const float *weight_ohwi,
                                   int B, int H, int W, int C, int OC, int K)
{
    if (!s_wg_fits(H, W, C, OC, K))
        return false;
    const int OH = H - K + 1, OW = W - K + 1, TH = OH / S_WG_M, TW = OW / S_WG_M, KK = K * K;
    const int NT = B * TH * TW;
    const size_t nv = (size_t) S_WG_XI * C * OC, us = (size_t) S_WG_XI * C + S_WG_PAD;
    const size_t zs = (size_t) S_WG_XI * OC + S_WG_PAD;
    float *vt = scratch, *dv = vt + nv, *u = dv + nv, *z = u + S_WG_CH * us;
    float *du = z + S_WG_CH * zs;
    if (din) {
        for (int oc = 0; oc < OC; oc++)         /* V^T [64][OC][C] from OHWI, over C */
            for (int c = 0; c < C; c += VW)
                s_wg_weight_tf(vt + (size_t) oc * C + c, (size_t) OC * C,
                               weight_ohwi + (size_t) oc * KK * C + c, (size_t) C);
        memset(din, 0, (size_t) B * H * W * C * sizeof(float));
    }
    memset(dv, 0, nv * sizeof(float));
    for (int t0 = 0; t0 < NT; t0 += S_WG_CH) {
        const int n = BN_MIN(S_WG_CH, NT - t0), npad = (n + S_WG_TX - 1) / S_WG_TX * S_WG_TX;
        s_wg_input_chunk(u, in, t0, n, npad, TH, TW, H, W, C);
        for (int t = 0; t < n; t++) {
            const float *src = dout + s_wg_tile_at(t0 + t, TH, TW, OH, OW, OC);
            for (int oc = 0; oc < OC; oc += VW)
                s_wg_output_grad_tf(z + t * zs + oc, (size_t) OC, src + oc, (size_t) OW * OC,
                                    (size_t) OC);
        }
        memset(z + n * zs, 0, (size_t) (npad - n) * zs * sizeof(float));
        s_wg_gemm_dw(dv, u, z, n, C, OC);
        if (!din)
            continue;
        s_wg_gemm_dx(du, z, vt, npad, C, OC);
        for (int t = 0; t < n; t++) {
            float *dst = din + s_wg_tile_at(t0 + t, TH, TW, H, W, C);
            for (int c = 0; c < C; c += VW)
                s_wg_input_grad_tf(dst + c, (size_t) W * C, (size_t) C, du + t * us + c,
                                   (size_t) C);
        }
    }
    for (int c = 0; c < C; c++)                 /* dg = G^T dV G, scattered to OHWI */
        for (int oc = 0; oc < OC; oc += VW) {
            V taps[S_WG_R * S_WG_R];
            float lane[VW];
            s_wg_weight_grad_tf(taps, dv + (size_t) c * OC + oc, (size_t) C * OC);
            for (int k = 0; k < KK; k++) {
                VSTORE(lane, taps[k]);
                for (int l = 0; l < VW; l++)
                    dweight_ohwi[((size_t) (oc + l) * KK + k) * C + c] = lane[l];
            }
        }
    return true;
}

#undef S_WG_INLINE

#endif
