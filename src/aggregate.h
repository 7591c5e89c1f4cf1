/*  aggregate.h -- robust aggregation rules, applied by an honest node to what
 *  its neighbours sent it (N_i plus itself), after its local update
 *  ("gossip after local update", Algorithm 1 of 002_9f36060eb9cf48f4.txt).
 *
 *  A rule object owns every buffer it needs, allocated once in bn_rule_new()
 *  for vectors of `dim` floats and up to `max_k` neighbours; bn_rule_aggregate()
 *  allocates nothing.  Rules never know who is Byzantine.  Each rule lives in
 *  its own file under src/rules/; this file is the registry and the common
 *  pre-filter: a neighbour vector containing NaN or infinity is excluded
 *  (weight 0) before any rule sees it, and counted in bn_rule_stats_t.
 *
 *  Rule names (bn_rule_parse): standalone, mean, similarity, similarity-kl,
 *  similarity-cos, trimmed-mean, median, krum, multi-krum, tv-norm, mozi,
 *  clipped-gossip, brsgd, bygars.  Bucketing (--bucketing s) can precede
 *  trimmed-mean, median, krum and multi-krum.
 */
#ifndef BN_AGGREGATE_H
#define BN_AGGREGATE_H

#include "common.h"

typedef enum {
    BN_RULE_STANDALONE, BN_RULE_MEAN, BN_RULE_SIMILARITY, BN_RULE_SIMILARITY_KL,
    BN_RULE_SIMILARITY_COS, BN_RULE_TRIMMED_MEAN, BN_RULE_MEDIAN, BN_RULE_KRUM,
    BN_RULE_MULTI_KRUM, BN_RULE_TV_NORM, BN_RULE_MOZI, BN_RULE_CLIPPED_GOSSIP,
    BN_RULE_BRSGD, BN_RULE_BYGARS, BN_RULE_COUNT
} bn_rule_kind_t;

typedef struct {
    bn_rule_kind_t kind;
    float    c;            /* similarity: softmax scale on -KL, default 5                 */
    uint32_t b;            /* trimmed-mean / krum: assumed Byzantine neighbours, default 1 */
    uint32_t m;            /* multi-krum: vectors averaged, 0 = k + 1 - b                  */
    float    lambda;       /* tv-norm: penalty, default 0.001                              */
    float    lr;           /* tv-norm: step size (the node's learning rate)                */
    float    clip_tau;     /* clipped-gossip: clipping radius, default 1.0                  */
    float    beta;         /* brsgd: fraction of vectors kept, default 0.5                  */
    float    bygars_lr;    /* bygars: reputation step size, default 1.0                     */
    uint32_t mozi_keep;    /* mozi: distance pre-selection keeps this many, 0 = k - b       */
    uint32_t bucketing;    /* s of s-resampling before trimmed-mean/median/krum, 0 = off    */
    uint64_t seed;         /* for bucketing's permutations                                   */
} bn_rule_opts_t;

/* Fills opts with the defaults above for `kind`. */
void bn_rule_opts_default(bn_rule_opts_t *opts, bn_rule_kind_t kind);
int  bn_rule_parse(const char *name, bn_rule_kind_t *kind);
const char *bn_rule_name(bn_rule_kind_t kind);

/* What a rule may ask of the node's own data (mozi, bygars): loss of a given
 * parameter vector on a local validation batch, and the gradient of the loss on
 * a held-out batch.  ctx is the node's; both calls are synchronous. */
typedef struct {
    void  *ctx;
    float (*loss)(void *ctx, const float *params);
    void  (*grad)(void *ctx, const float *params, float *grad_out);
} bn_oracle_t;

typedef struct {
    size_t   dim;
    const float *x_prev;        /* x_i^t: the node's model at the start of the round  */
    const float *x_self;        /* x_i^{t+1}: after this round's local SGD steps       */
    uint32_t k;                 /* neighbour vectors that arrived this round           */
    const float *const *x_nb;   /* x_j^{t+1}, k vectors of dim floats (borrowed)       */
    const uint32_t *nb_id;      /* their node ids, for per-neighbour state (bygars)    */
    const bn_oracle_t *oracle;  /* may be NULL for rules that do not evaluate          */
} bn_agg_input_t;

typedef struct {
    uint64_t rounds;            /* calls to bn_rule_aggregate                          */
    uint64_t nonfinite;         /* neighbour vectors excluded for NaN / infinity       */
    uint64_t degenerate;        /* rounds that fell back (weights summed to zero, ...) */
} bn_rule_stats_t;

typedef struct bn_rule_t bn_rule_t;

/* Caller owns the result; NULL on allocation failure or bad options. */
bn_rule_t *bn_rule_new(const bn_rule_opts_t *opts, size_t dim, uint32_t max_k);
void bn_rule_destroy(bn_rule_t **self_p);

/* Writes the aggregated model into x_out (dim floats; may alias nothing in
 * `in`).  weights (k + 1 floats, may be NULL) receives the share of the update
 * each neighbour got (index 0..k-1, in x_nb order) and the node itself (index
 * k), summing to 1 for weighting rules and 1/selected for selecting rules, 0
 * for excluded ones; this is the telemetry the run report uses.
 * Returns BN_OK; BN_EARG if in->k > max_k or dim differs. */
int bn_rule_aggregate(bn_rule_t *self, const bn_agg_input_t *in, float *x_out, float *weights);

const bn_rule_stats_t *bn_rule_stats(const bn_rule_t *self);

#endif
