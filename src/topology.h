/*  topology.h -- who talks to whom: Erdos-Renyi graphs from igraph, or a file.
 *
 *  A topology is an undirected simple graph on nodes 0..n-1 stored as sorted
 *  adjacency lists (CSR).  bn_topology_er() draws G(n, p) with igraph's RNG
 *  seeded from (seed, epoch) and redraws, from seeds derived deterministically
 *  from the first, until the graph is connected and every node has degree >=
 *  min_degree, so every node computes the same graph on its own.  A
 *  time-varying swarm calls it with each epoch; a static one with epoch
 *  BN_TOPOLOGY_STATIC.  The fingerprint is a 64-bit hash of (n, sorted edge
 *  list) that nodes put in their messages so that two hosts that built
 *  different graphs (say, from two igraph builds) notice it.
 */
#ifndef BN_TOPOLOGY_H
#define BN_TOPOLOGY_H

#include "common.h"

#define BN_TOPOLOGY_STATIC UINT32_MAX
#define BN_TOPOLOGY_MAX_DRAWS 10000

typedef struct {
    uint32_t  n;
    uint32_t *offsets;      /* n + 1 entries; neighbours of i are adj[offsets[i] .. offsets[i+1]) */
    uint32_t *adj;          /* 2 * edges entries, each list sorted ascending; owned */
    uint64_t  fingerprint;
    uint32_t  draws;        /* ER: how many graphs were drawn before one qualified */
} bn_topology_t;

/* Draws the qualifying G(n, p) for (seed, epoch) into *t (caller frees with
 * bn_topology_free).  BN_EARG if n < 1, p outside [0, 1], or no qualifying graph
 * in BN_TOPOLOGY_MAX_DRAWS draws (message says which condition failed). */
int bn_topology_er(bn_topology_t *t, uint32_t n, double p, uint32_t min_degree,
                   uint64_t seed, uint32_t epoch, char *err, size_t errlen);

/* Reads an edge-list file: '#' comments, then one "u v" pair per line
 * (0-based ids < n; self-loops and duplicate edges are rejected with the line
 * number).  n == 0: n = 1 + the largest id seen (or the "# nodes: N" header).
 * A file without edges is refused (BN_EFORMAT) whatever n: it would leave
 * every node alone.  Lines are at most 4096 bytes, checked before they are
 * stored, so /dev/zero or a binary file fails at once. */
int bn_topology_load(bn_topology_t *t, const char *path, uint32_t n, char *err, size_t errlen);

/* Writes t as an edge list with a comment header (n, edges, fingerprint). */
int bn_topology_save(const bn_topology_t *t, const char *path, char *err, size_t errlen);

/* Neighbours of node i (borrowed, valid until t is freed); *deg gets the count. */
const uint32_t *bn_topology_neighbors(const bn_topology_t *t, uint32_t i, uint32_t *deg);

bool bn_topology_has_edge(const bn_topology_t *t, uint32_t i, uint32_t j);

typedef struct {
    uint32_t edges, min_degree, max_degree;
    double   mean_degree;
    bool     connected;
    uint32_t diameter;       /* UINT32_MAX if disconnected */
} bn_topology_stats_t;

void bn_topology_stats(const bn_topology_t *t, bn_topology_stats_t *s);

void bn_topology_free(bn_topology_t *t);

#endif
