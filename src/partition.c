/*  partition.c -- which training images belong to which node; see partition.h.
 *
 *  Every node runs the same computation over the whole label array with one
 *  bn_rng stream (seed, BN_STREAM_PARTITION) consumed in a fixed order, and
 *  keeps only its own part; hence shards are disjoint and complete on every
 *  host without communication.  Order of randomness:
 *    1. a Fisher-Yates permutation `perm` of 0..n-1 (all kinds);
 *    2. shards:    a permutation of the nodes * shards_per_node shard ids;
 *       dirichlet: for class 0..9, `nodes` Gamma(alpha) draws.
 *  A node's indices are collected through a membership mark, so they come
 *  out sorted ascending.  Details and the exact cut rules: docs/data.md.
 */
#include "partition.h"
#include "dataset.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_names[] = {
    [BN_PART_IID] = "iid",
    [BN_PART_SHARDS] = "shards",
    [BN_PART_DIRICHLET] = "dirichlet",
};

int bn_partition_parse(const char *name, bn_partition_kind_t *kind)
{
    if (!name)
        return BN_EARG;
    for (size_t i = 0; i < BN_ARRAY_LEN(s_names); i++) {
        if (strcmp(name, s_names[i]) == 0) {
            *kind = (bn_partition_kind_t) i;
            return BN_OK;
        }
    }
    return BN_EARG;
}

const char *bn_partition_name(bn_partition_kind_t kind)
{
    if ((unsigned) kind < BN_ARRAY_LEN(s_names))
        return s_names[kind];
    return "unknown";
}

/* Marks node_id's images of the iid split of perm. */
static void s_iid(const uint32_t *perm, uint32_t n, uint32_t nodes, uint32_t node_id, uint8_t *mark)
{
    uint32_t base = n / nodes, rem = n % nodes;
    uint32_t start = node_id * base + BN_MIN(node_id, rem);
    uint32_t size = base + (node_id < rem ? 1 : 0);
    for (uint32_t k = start; k < start + size; k++)
        mark[perm[k]] = 1;
}

/* Stable counting sort of perm by label into out (ties keep perm's order). */
static void s_sort_by_label(const uint32_t *perm, const uint8_t *labels, uint32_t n, uint32_t *out,
                            uint32_t *class_start)
{
    uint32_t cnt[BN_NUM_CLASSES + 1] = { 0 };
    for (uint32_t i = 0; i < n; i++)
        cnt[labels[i] + 1]++;
    for (int c = 0; c < BN_NUM_CLASSES; c++)
        cnt[c + 1] += cnt[c];
    memcpy(class_start, cnt, sizeof cnt);
    for (uint32_t k = 0; k < n; k++)
        out[cnt[labels[perm[k]]]++] = perm[k];
}

/* Marks node_id's images of the shards split. */
static int s_shards(bn_rng_t *r, const uint32_t *perm, const uint8_t *labels, uint32_t n,
                    uint32_t nodes, uint32_t spn, uint32_t node_id, uint8_t *mark)
{
    uint64_t total = (uint64_t) nodes * spn;
    uint32_t *sorted = malloc((size_t) n * sizeof *sorted);
    uint32_t *order = malloc((size_t) total * sizeof *order);
    uint32_t class_start[BN_NUM_CLASSES + 1];
    if (!sorted || !order) {
        free(sorted);
        free(order);
        return BN_ENOMEM;
    }
    s_sort_by_label(perm, labels, n, sorted, class_start);
    for (uint32_t k = 0; k < total; k++)
        order[k] = k;
    bn_rng_shuffle_u32(r, order, (size_t) total);
    for (uint32_t j = 0; j < spn; j++) {
        uint64_t shard = order[(uint64_t) node_id * spn + j];
        uint64_t lo = shard * n / total, hi = (shard + 1) * n / total;
        for (uint64_t k = lo; k < hi; k++)
            mark[sorted[k]] = 1;
    }
    free(sorted);
    free(order);
    return BN_OK;
}

/* Marks node_id's images of the Dirichlet split. */
static int s_dirichlet(bn_rng_t *r, const uint32_t *perm, const uint8_t *labels, uint32_t n,
                       uint32_t nodes, double alpha, uint32_t node_id, uint8_t *mark)
{
    uint32_t *sorted = malloc((size_t) (n > 0 ? n : 1) * sizeof *sorted);
    double *prop = malloc((size_t) nodes * sizeof *prop);
    uint32_t class_start[BN_NUM_CLASSES + 1];
    if (!sorted || !prop) {
        free(sorted);
        free(prop);
        return BN_ENOMEM;
    }
    s_sort_by_label(perm, labels, n, sorted, class_start);
    for (int c = 0; c < BN_NUM_CLASSES; c++) {
        double sum = 0.0;
        for (uint32_t j = 0; j < nodes; j++) {
            prop[j] = bn_rng_gamma(r, alpha);
            sum += prop[j];
        }
        uint32_t cn = class_start[c + 1] - class_start[c];
        const uint32_t *members = sorted + class_start[c];
        if (!(sum > 0.0) || !isfinite(sum)) {
            /* Every draw underflowed (tiny alpha): the class goes to one node. */
            uint32_t who = (uint32_t) bn_rng_below(r, nodes);
            if (who == node_id)
                for (uint32_t k = 0; k < cn; k++)
                    mark[members[k]] = 1;
            continue;
        }
        /* node j gets members[cut(j-1) .. cut(j)), cut(j) = round(cn * cumsum_j / sum) */
        double cum = 0.0;
        uint32_t lo = 0;
        for (uint32_t j = 0; j < nodes && j <= node_id; j++) {
            cum += prop[j];
            uint32_t hi = j == nodes - 1 ? cn : (uint32_t) llround((double) cn * (cum / sum));
            if (hi > cn)
                hi = cn;
            if (hi < lo)
                hi = lo;
            if (j == node_id)
                for (uint32_t k = lo; k < hi; k++)
                    mark[members[k]] = 1;
            lo = hi;
        }
    }
    free(sorted);
    free(prop);
    return BN_OK;
}

int bn_partition_node(const bn_partition_opts_t *opts, const uint8_t *labels, uint32_t n,
                      uint32_t node_id, uint32_t **idx, uint32_t *count,
                      char *err, size_t errlen)
{
    *idx = NULL;
    *count = 0;
    if (!opts || (!labels && n > 0))
        return bn_fail(err, errlen, BN_EARG, "partition: missing options or labels");
    if (opts->nodes < 1)
        return bn_fail(err, errlen, BN_EARG, "partition: nodes = %u, must be >= 1", opts->nodes);
    if (node_id >= opts->nodes)
        return bn_fail(err, errlen, BN_EARG, "partition: node id %u out of range 0..%u",
                       node_id, opts->nodes - 1);
    for (uint32_t i = 0; i < n; i++)
        if (labels[i] >= BN_NUM_CLASSES)
            return bn_fail(err, errlen, BN_EARG, "partition: label %u at index %u is > %d",
                           labels[i], i, BN_NUM_CLASSES - 1);
    uint32_t spn = opts->shards_per_node ? opts->shards_per_node : 2;
    double alpha = opts->alpha == 0.0 ? 0.5 : opts->alpha;
    switch (opts->kind) {
    case BN_PART_IID:
        break;
    case BN_PART_SHARDS:
        if ((uint64_t) opts->nodes * spn > n)
            return bn_fail(err, errlen, BN_EARG,
                           "partition: %u nodes x %u shards per node = %llu shards > %u images",
                           opts->nodes, spn, (unsigned long long) opts->nodes * spn, n);
        break;
    case BN_PART_DIRICHLET:
        if (!(alpha > 0.0) || !isfinite(alpha))
            return bn_fail(err, errlen, BN_EARG, "partition: dirichlet alpha = %g, must be > 0",
                           opts->alpha);
        break;
    default:
        return bn_fail(err, errlen, BN_EARG, "partition: unknown kind %d", (int) opts->kind);
    }

    int rc = BN_OK;
    uint32_t *perm = malloc((size_t) (n > 0 ? n : 1) * sizeof *perm);
    uint8_t *mark = calloc(n > 0 ? n : 1, 1);
    if (!perm || !mark) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "partition: out of memory for %u images", n);
        goto fail;
    }
    bn_rng_t r;
    bn_rng_seed(&r, opts->seed, BN_STREAM_PARTITION);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    bn_rng_shuffle_u32(&r, perm, n);

    if (opts->kind == BN_PART_IID)
        s_iid(perm, n, opts->nodes, node_id, mark);
    else if (opts->kind == BN_PART_SHARDS)
        rc = s_shards(&r, perm, labels, n, opts->nodes, spn, node_id, mark);
    else
        rc = s_dirichlet(&r, perm, labels, n, opts->nodes, alpha, node_id, mark);
    if (rc != BN_OK) {
        rc = bn_fail(err, errlen, rc, "partition: out of memory for %u images", n);
        goto fail;
    }

    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++)
        c += mark[i];
    *idx = malloc((size_t) (c > 0 ? c : 1) * sizeof **idx);
    if (!*idx) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "partition: out of memory for %u indices", c);
        goto fail;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (mark[i])
            (*idx)[k++] = i;
    *count = c;
fail:
    free(perm);
    free(mark);
    return rc;
}
