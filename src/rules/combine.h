/*  combine.h -- how a rule forms x_out once it has judged the vectors: the
 *  mean of the chosen ones (krum, multi-krum, brsgd) and the steps of
 *  self-centred clipping (He, Karimireddy & Jaggi: clip(z, tau) = z min(1,
 *  tau / ||z||); clipped-gossip, robust-similarity, and the clip to the
 *  node's own step in bygars and bygars++).
 *
 *  PRIVATE to the rule files.  Allocates nothing; every loop is
 *  element-wise with the rule's own float operations, so a rule gives the
 *  same bits through these as written out in place.
 */
#ifndef BN_RULES_COMBINE_H
#define BN_RULES_COMBINE_H

#include "rules.h"

/* The factor that clips a difference of l2 norm `dist` to `radius`:
 * min(1, radius / dist), 1 when dist <= radius. */
static inline double bn_clip_factor(double dist, double radius)
{
    return dist > radius ? radius / dist : 1.0;
}

/* acc += a (x - xs) over dim floats, where dist = ||x - xs||: past 1e30 the
 * difference may overflow in float, so it is a x - a xs there. */
void bn_clip_accumulate(float *restrict acc, float a, const float *restrict x,
                        const float *restrict xs, size_t dim, double dist);

/* x_out = the mean of set->v[idx[0..m)] (m >= 1; a copy when m == 1), and
 * w = 1/m on those vectors, 0 elsewhere (n entries). */
void bn_combine_mean_of(const bn_set_t *set, const uint32_t *idx, uint32_t m,
                        float *restrict x_out, float *w);

#endif
