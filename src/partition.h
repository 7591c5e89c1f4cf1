/*  partition.h -- which training images belong to which node.
 *
 *  Every node computes its own shard from (kind, seed, nodes, node id) and the
 *  training labels alone, with no communication; all nodes compute the same
 *  global assignment, so shards are disjoint and together cover the set
 *  (iid and shards: exactly; dirichlet: every image goes to exactly one node).
 *    iid       -- a seeded permutation split into `nodes` near-equal parts
 *                 (the paper's setting).
 *    shards    -- sort by label (ties by a seeded permutation), cut into
 *                 nodes * shards_per_node equal shards, deal each node
 *                 shards_per_node of them at random (non-iid, as in
 *                 003_bd0b28ca873f56ed.txt).
 *    dirichlet -- for each class, proportions over nodes drawn from
 *                 Dir(alpha), the class's images split accordingly.
 */
#ifndef BN_PARTITION_H
#define BN_PARTITION_H

#include "common.h"

typedef enum { BN_PART_IID, BN_PART_SHARDS, BN_PART_DIRICHLET } bn_partition_kind_t;

typedef struct {
    bn_partition_kind_t kind;
    uint64_t seed;
    uint32_t nodes;            /* >= 1                               */
    uint32_t shards_per_node;  /* shards: default 2                  */
    double   alpha;            /* dirichlet: > 0, default 0.5        */
} bn_partition_opts_t;

/* Parses "iid" | "shards" | "dirichlet"; BN_EARG otherwise. */
int bn_partition_parse(const char *name, bn_partition_kind_t *kind);
const char *bn_partition_name(bn_partition_kind_t kind);

/* Computes node `node_id`'s image indices into the training set whose labels
 * are labels[0..n).  On success *idx is a malloc'd array (caller frees) of
 * *count indices, sorted ascending. */
int bn_partition_node(const bn_partition_opts_t *opts, const uint8_t *labels, uint32_t n,
                      uint32_t node_id, uint32_t **idx, uint32_t *count,
                      char *err, size_t errlen);

#endif
