/*  graphs.c -- per-epoch graphs, cached; see graphs.h. */
#include "graphs.h"

#include <stdlib.h>

typedef struct {
    bool          valid;
    uint32_t      key;          /* epoch, or BN_TOPOLOGY_STATIC */
    bn_topology_t g;
} s_entry_t;

struct bn_graphs_t {
    bn_graphs_opts_t o;
    s_entry_t        e[BN_GRAPHS_CACHE];
    int              pinned;     /* index into e, -1 if none */
    uint32_t         failed_key; /* last key that failed (logged once) */
};

bn_graphs_t *bn_graphs_new(const bn_graphs_opts_t *o)
{
    bn_graphs_t *gs = calloc(1, sizeof *gs);
    if (!gs)
        return NULL;
    gs->o = *o;
    gs->pinned = -1;
    gs->failed_key = UINT32_MAX - 1;
    return gs;
}

void bn_graphs_destroy(bn_graphs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_graphs_t *gs = *self_p;
    for (int i = 0; i < BN_GRAPHS_CACHE; i++)
        if (gs->e[i].valid)
            bn_topology_free(&gs->e[i].g);
    free(gs);
    *self_p = NULL;
}

static int s_lookup(bn_graphs_t *gs, uint32_t epoch)
{
    uint32_t key = gs->o.time_varying ? epoch : BN_TOPOLOGY_STATIC;
    int victim = -1;
    for (int i = 0; i < BN_GRAPHS_CACHE; i++) {
        if (gs->e[i].valid && gs->e[i].key == key)
            return i;
        if (!gs->e[i].valid && victim < 0)
            victim = i;
    }
    if (victim < 0) {
        /* Evict the oldest epoch that is not pinned. */
        uint32_t oldest = UINT32_MAX;
        for (int i = 0; i < BN_GRAPHS_CACHE; i++)
            if (i != gs->pinned && gs->e[i].key <= oldest) {
                oldest = gs->e[i].key;
                victim = i;
            }
        bn_topology_free(&gs->e[victim].g);
        gs->e[victim].valid = false;
    }
    char err[256];
    int rc;
    if (gs->o.topology_file && gs->o.topology_file[0])
        rc = bn_topology_load(&gs->e[victim].g, gs->o.topology_file, gs->o.n, err, sizeof err);
    else
        rc = bn_topology_er(&gs->e[victim].g, gs->o.n, gs->o.p, gs->o.min_degree, gs->o.seed, key,
                            err, sizeof err);
    if (rc != BN_OK) {
        if (gs->failed_key != key)
            BN_ERROR("topology for epoch %u: %s", epoch + 1, err);
        gs->failed_key = key;
        return -1;
    }
    gs->e[victim].key = key;
    gs->e[victim].valid = true;
    return victim;
}

const bn_topology_t *bn_graphs_get(bn_graphs_t *gs, uint32_t epoch)
{
    int i = s_lookup(gs, epoch);
    return i < 0 ? NULL : &gs->e[i].g;
}

const bn_topology_t *bn_graphs_pin(bn_graphs_t *gs, uint32_t epoch)
{
    int i = s_lookup(gs, epoch);
    gs->pinned = i;
    return i < 0 ? NULL : &gs->e[i].g;
}
