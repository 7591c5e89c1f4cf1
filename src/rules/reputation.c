/*  reputation.c -- what the two ByGARS rules share (bygars.c, bygars_pp.c):
 *  the per-node-id reputation memory, the update they apply and their
 *  degenerate round.  Owned by the reputation rules; nothing else keeps
 *  state in a bn_rep_table_t.
 *
 *  The memory is open addressing on the node id (neighbours change in
 *  time-varying graphs) with at least 8 slots per vector a round can hold
 *  (256 at least, a power of two, at most 2^24); once it is 3/4 full new ids
 *  are not remembered (they are judged on the round alone, from 0).
 */
#include "rules.h"

#include <stdlib.h>
#include <string.h>

int bn_rep_init(bn_rep_table_t *t, uint32_t cap)
{
    uint32_t rc = 256;
    while (rc < 8 * cap && rc < (1u << 24))
        rc <<= 1;
    t->cap = rc;
    t->used = 0;
    t->self = 0.0;
    t->slot = calloc(rc, sizeof *t->slot);
    return t->slot ? BN_OK : BN_ENOMEM;
}

void bn_rep_free(bn_rep_table_t *t)
{
    free(t->slot);
    t->slot = NULL;
}

double *bn_rep_find(bn_rep_table_t *t, uint32_t id, bool insert)
{
    if (!t->slot)
        return NULL;
    uint32_t mask = t->cap - 1;
    for (uint32_t h = (uint32_t) bn_mix64(id) & mask;; h = (h + 1) & mask) {
        bn_rep_slot_t *s = &t->slot[h];
        if (s->used && s->id == id)
            return &s->q;
        if (!s->used) {
            if (!insert || 4 * (t->used + 1) > 3 * t->cap)
                return NULL;
            s->used = 1;
            s->id = id;
            s->q = 0.0;
            t->used++;
            return &s->q;
        }
    }
}

double bn_rep_get(bn_rep_table_t *t, uint32_t id)
{
    double *q = bn_rep_find(t, id, false);
    return q ? *q : 0.0;
}

double bn_rep_reputation(void *state, uint32_t id)
{
    return bn_rep_get((bn_rep_table_t *) state, id);
}

double *bn_rep_of(bn_rep_table_t *t, const bn_set_t *set, uint32_t j)
{
    if (j == set->n - 1)
        return &t->self;
    return set->in->nb_id ? bn_rep_find(t, set->in->nb_id[set->orig[j]], true) : NULL;
}

void bn_rep_combine(const bn_set_t *set, const double *coef, float *restrict out)
{
    size_t dim = set->dim;
    const float *restrict xp = set->x_prev;
    for (size_t c = 0; c < dim; c++)
        out[c] = 0.0f;
    for (uint32_t j = 0; j < set->n; j++) {
        float a = (float) coef[j];
        if (a == 0.0f)
            continue;
        const float *restrict x = set->v[j];
        for (size_t c = 0; c < dim; c++)
            out[c] += a * x[c] - a * xp[c];
    }
    for (size_t c = 0; c < dim; c++)
        out[c] += xp[c];
}

void bn_rep_keep_self(const bn_set_t *set, float *x_out, float *w)
{
    set->stats->degenerate++;
    memcpy(x_out, set->x_self, set->dim * sizeof *x_out);
    for (uint32_t j = 0; j + 1 < set->n; j++)
        w[j] = 0.0f;
    w[set->n - 1] = 1.0f;
}
