/*  combine.c -- the mean of chosen vectors and the clipped accumulation; see
 *  combine.h. */
#include "combine.h"

#include <string.h>

void bn_clip_accumulate(float *restrict acc, float a, const float *restrict x,
                        const float *restrict xs, size_t dim, double dist)
{
    if (dist > 1e30)
        for (size_t c = 0; c < dim; c++)
            acc[c] += a * x[c] - a * xs[c];
    else
        for (size_t c = 0; c < dim; c++)
            acc[c] += a * (x[c] - xs[c]);
}

void bn_combine_mean_of(const bn_set_t *set, const uint32_t *idx, uint32_t m,
                        float *restrict x_out, float *w)
{
    size_t dim = set->dim;
    for (uint32_t j = 0; j < set->n; j++)
        w[j] = 0.0f;
    float inv = 1.0f / (float) m;
    const float *restrict x0 = set->v[idx[0]];
    if (m == 1) {
        memcpy(x_out, x0, dim * sizeof *x_out);
    } else {
        bn_select_scale(x_out, inv, x0, dim);
        for (uint32_t q = 1; q < m; q++)
            bn_select_axpy(x_out, inv, set->v[idx[q]], dim);
    }
    for (uint32_t q = 0; q < m; q++)
        w[idx[q]] = inv;
}
