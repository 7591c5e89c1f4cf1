/*  roles.c -- the Byzantine set and rounds per epoch; see roles.h. */
#include "roles.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

int bn_roles_byzantine(uint64_t seed, uint32_t n, uint32_t b, bool *is_byz)
{
    memset(is_byz, 0, n * sizeof *is_byz);
    uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
    if (!perm)
        return BN_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    bn_rng_t r;
    bn_rng_seed(&r, seed, BN_STREAM_BYZANTINE);
    bn_rng_shuffle_u32(&r, perm, n);
    for (uint32_t i = 0; i < b && i < n; i++)
        is_byz[perm[i]] = true;
    free(perm);
    return BN_OK;
}

uint32_t bn_schedule_rounds_per_epoch(uint32_t train_size, uint32_t n, uint32_t batch,
                                      uint32_t local_steps)
{
    if (n == 0 || batch == 0 || local_steps == 0)
        return 1;
    uint64_t share = ((uint64_t) train_size + n - 1) / n;
    uint64_t step = (uint64_t) batch * local_steps;
    uint64_t r = (share + step - 1) / step;
    return r == 0 ? 1 : (uint32_t) BN_MIN(r, (uint64_t) UINT32_MAX);
}
