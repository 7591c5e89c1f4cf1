/*  types.h -- the types the aggregation rules (rules/rules.h, the rule
 *  files) share with the registry above them (aggregate.h, which includes
 *  this header): a rule's parameters and options, its input and its
 *  counters.  Lower than both, so that neither includes the other's header
 *  for them.  types.c holds the two parameter rows several rules read and
 *  the option lookup every rule uses.
 */
#ifndef BN_RULES_TYPES_H
#define BN_RULES_TYPES_H

#include "../common.h"

/* A rule is its index in the registry.  Only the first two rows have names
 * other modules may use directly; every other rule is found by name. */
typedef uint32_t bn_rule_kind_t;
enum { BN_RULE_STANDALONE = 0, BN_RULE_MEAN = 1 };

typedef enum { BN_RULE_PARAM_U32, BN_RULE_PARAM_F32 } bn_rule_param_type_t;

/* One rule parameter, a row of a rule's table (static storage). */
typedef struct {
    const char *name;           /* option spelling, without "--"                 */
    bn_rule_param_type_t type;  /* u32 values must be integers                   */
    double def, min, max;       /* default and accepted closed range             */
    const char *help;           /* one line                                      */
} bn_rule_param_t;

#define BN_RULE_OPTS_MAX 16

/* The rule and the parameter values given explicitly (by value: copyable). */
typedef struct {
    bn_rule_kind_t kind;
    uint32_t n_set;                        /* entries used in set[]             */
    struct {
        const bn_rule_param_t *param;      /* registry row (static)             */
        double value;                      /* validated against param's range   */
    } set[BN_RULE_OPTS_MAX];
    float    lr;          /* the node's learning rate (tv-norm's step size)        */
    uint64_t seed;        /* the run seed (bucketing's permutations)               */
} bn_rule_opts_t;

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
    /* NULL, or k slots: x_nb[j] is the vector bn_rule_observe saw in slot[j]
     * (UINT32_MAX: not observed).  With slots, a rule that streams
     * (bn_rule_streams) accepts x_nb[j] == NULL for an observed vector whose
     * payload the caller released after bn_rule_observe. */
    const uint32_t *slot;
} bn_agg_input_t;

typedef struct {
    uint64_t rounds;            /* calls to bn_rule_aggregate                          */
    uint64_t nonfinite;         /* neighbour vectors excluded for NaN / infinity       */
    uint64_t degenerate;        /* rounds that fell back (weights summed to zero, ...) */
    uint64_t streamed;          /* neighbour vectors whose per-neighbour pass ran as they
                                 * arrived (bn_rule_observe) and was used             */
} bn_rule_stats_t;

/* The value of parameter p in opts: the one set (matched by row or name),
 * else the row's default. */
double bn_rule_opts_value(const bn_rule_opts_t *opts, const bn_rule_param_t *p);

/* Parameters more than one rule reads (types.c). */
extern const bn_rule_param_t bn_rule_param_trim;      /* b: assumed Byzantine neighbours */
extern const bn_rule_param_t bn_rule_param_bucketing; /* s of s-resampling               */

#endif
