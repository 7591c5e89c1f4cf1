/*  graphs.h -- the communication graph of each epoch, built on demand and
 *  cached.
 *
 *  A static graph (an edge-list file, or G(n, p) without --time-varying) is
 *  one graph for every epoch; a time-varying graph is drawn per epoch from
 *  (seed, epoch) (topology.h).  The node asks for its current epoch's graph;
 *  its inbox asks for the graph of each message's epoch, to check the
 *  sender's fingerprint and adjacency.  BN_GRAPHS_CACHE graphs are kept; the
 *  pinned one (the node's current epoch) is never evicted, so the pointer
 *  bn_graphs_pin returns stays valid until the next bn_graphs_pin.  Any other
 *  returned pointer is valid until the next call.
 */
#ifndef BN_GRAPHS_H
#define BN_GRAPHS_H

#include "common.h"
#include "topology.h"

#define BN_GRAPHS_CACHE 4

typedef struct {
    uint32_t    n;
    const char *topology_file;   /* borrowed; "" or NULL: G(n, p) */
    double      p;
    uint32_t    min_degree;
    uint64_t    seed;
    bool        time_varying;
} bn_graphs_opts_t;

typedef struct bn_graphs_t bn_graphs_t;

/* NULL when out of memory.  o->topology_file must outlive the object. */
bn_graphs_t *bn_graphs_new(const bn_graphs_opts_t *o);
void bn_graphs_destroy(bn_graphs_t **self_p);

/* The graph of `epoch`, or NULL (error logged once per epoch) if it cannot
 * be built. */
const bn_topology_t *bn_graphs_get(bn_graphs_t *gs, uint32_t epoch);
/* As bn_graphs_get, and pins it: it stays cached until the next pin. */
const bn_topology_t *bn_graphs_pin(bn_graphs_t *gs, uint32_t epoch);

#endif
