/*  kernels.h -- per-ISA kernel sets behind layers.c's run-time dispatch.
 *
 *  PRIVATE to layers.c and the kernels_*.c files; nothing else includes it.
 *  Each instruction set's kernels live in their own file, compiled with
 *  function-level target attributes (x86) or for the baseline of the target
 *  (NEON on aarch64), so ONE portable build carries every path and
 *  layers.c picks one at start-up from what the CPU has.
 *
 *  A kernel set is a table of entry points with the same shapes and layouts
 *  as the public kernels in layers.h.  Every entry returns true when it did
 *  the work and false, touching nothing, when the shape is not one it is
 *  blocked for (channel counts not a multiple of its vector width, say);
 *  layers.c then runs the portable loops.  A set whose ISA this compiler or
 *  target cannot emit has NULL entries and available = false.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include "common.h"

typedef struct {
    const char *name;
    bool available;                  /* compiled in for this target            */

    /* out [B][OH][OW][OC] = conv(in [B][H][W][C], weight [K][K][C][OC]), no bias. */
    bool (*conv_forward)(float *out, const float *in, const float *weight_hwio,
                         int B, int H, int W, int C, int OC, int K);
    /* dweight [OC][K][K][C] overwritten; din [B][H][W][C] overwritten unless NULL. */
    bool (*conv_backward)(float *din, float *dweight_ohwi, const float *dout,
                          const float *in, const float *weight_ohwi,
                          int B, int H, int W, int C, int OC, int K);
    /* 2x2 max-pool (with relu: max(0, max + bias[c])), argmax as layers.h. */
    bool (*pool_forward)(float *out, uint8_t *argmax, const float *in, const float *bias,
                         int B, int H, int W, int C, bool relu);
    /* din overwritten; with out != NULL the ReLU mask applies and dbias [C]
     * is overwritten (dbias and out are both NULL or both not). */
    bool (*pool_backward)(float *din, float *dbias, const float *dout, const float *out,
                          const uint8_t *argmax, int B, int H, int W, int C);
    /* Fused single-channel conv + bias + ReLU + pool and its weight backward. */
    bool (*conv1ch_forward)(float *out, uint8_t *argmax, const float *in, const float *weight,
                            const float *bias, int B, int H, int W, int OC, int K);
    bool (*conv1ch_backward)(float *dweight, float *dbias, const float *dout, const float *out,
                             const uint8_t *argmax, const float *in,
                             int B, int H, int W, int OC, int K);
    /* conv_forward / conv_backward as Winograd F(4x4, 5x5) (kernels_winograd.h),
     * same layouts and results up to float rounding, using scratch of
     * bn_winograd_scratch_floats(C, OC) floats (contents not kept).  NULL in
     * a set where it measured no faster than the set's direct kernels. */
    bool (*conv_forward_winograd)(float *out, float *scratch, const float *in,
                                  const float *weight_hwio, int B, int H, int W, int C, int OC,
                                  int K);
    bool (*conv_backward_winograd)(float *din, float *dweight_ohwi, float *scratch,
                                   const float *dout, const float *in, const float *weight_ohwi,
                                   int B, int H, int W, int C, int OC, int K);
} bn_kernel_set_t;

/* Defined in kernels_avx512.c, kernels_avx2.c, kernels_sse.c and kernels_neon.c. */
extern const bn_kernel_set_t bn_kernel_set_avx512;
extern const bn_kernel_set_t bn_kernel_set_avx2;
extern const bn_kernel_set_t bn_kernel_set_sse4;
extern const bn_kernel_set_t bn_kernel_set_neon;

/* Largest K*K the fused single-channel kernels accept (their transposed
 * weights live on the stack). */
enum { BN_KERNELS_MAX_KK = 64 };

/* Tiles the Winograd kernels transform per chunk (bounds their scratch),
 * the floats of padding after each tile's transformed values, and that
 * scratch: two [64][C][OC] weight arrays + per tile of a chunk [64][C] +
 * [64][OC] + [64][C], each padded; kernels_winograd.h says what is where. */
enum { BN_WINOGRAD_CHUNK = 16, BN_WINOGRAD_PAD = 16 };

static inline size_t bn_winograd_scratch_floats(int C, int OC)
{
    return (size_t) 128 * C * OC
           + (size_t) BN_WINOGRAD_CHUNK * (64 * (2 * (size_t) C + OC) + 3 * BN_WINOGRAD_PAD);
}

#endif
