/*  aggregate.h -- robust aggregation rules, applied by an honest node to what
 *  its neighbours sent it (N_i plus itself), after its local update
 *  ("gossip after local update", Algorithm 1 of 002_9f36060eb9cf48f4.txt).
 *
 *  A rule object owns every buffer it needs, allocated once in bn_rule_new()
 *  for vectors of `dim` floats and up to `max_k` neighbours; bn_rule_aggregate()
 *  allocates nothing.  Rules never know who is Byzantine.  Each rule is a
 *  plug-in: one file under src/rules/ holding its operations table (name,
 *  parameters, state size, init, aggregate, free, flags) and its own state
 *  struct, plus one line in src/rules/registry.def.  This module is the
 *  registry, the parameter store and the common pre-filter: a neighbour
 *  vector containing NaN or infinity is excluded (weight 0) before any rule
 *  sees it, and counted in bn_rule_stats_t.
 *
 *  Rules are named on the command line (bn_rule_parse); `byznode rules`
 *  prints the list with every parameter, its default and range
 *  (bn_rule_list).  Parameters are set by name (bn_rule_opts_set) with the
 *  same spelling as the command-line option (--c, --trim, ...); a parameter
 *  that is never set has the default of its table row.
 */
#ifndef BN_AGGREGATE_H
#define BN_AGGREGATE_H

#include "common.h"

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

/* kind with no parameter set, lr = 0.1, seed = 0. */
void bn_rule_opts_default(bn_rule_opts_t *opts, bn_rule_kind_t kind);
int  bn_rule_parse(const char *name, bn_rule_kind_t *kind);
/* Static name; "unknown" for an index past the registry. */
const char *bn_rule_name(bn_rule_kind_t kind);
uint32_t bn_rule_count(void);
/* Whether the rule's oracle must see data the node does not train on (a
 * held-out auxiliary set: bygars, see node_setup.c). */
bool bn_rule_holds_out(bn_rule_kind_t kind);

/* The parameter row named `name` (any rule's, or the common ones: trim,
 * bucketing), or NULL.  bn_rule_param_at(i) enumerates every distinct row,
 * i = 0, 1, ... until NULL (for generated option tables and help). */
const bn_rule_param_t *bn_rule_param_find(const char *name);
const bn_rule_param_t *bn_rule_param_at(size_t i);

/* Sets parameter `name` from text.  BN_OK; BN_EARG with a message naming the
 * bad value and the range (or "unknown rule parameter") in err. */
int  bn_rule_opts_set(bn_rule_opts_t *opts, const char *name, const char *value,
                      char *err, size_t errlen);
/* The same from a number (validated likewise). */
int  bn_rule_opts_put(bn_rule_opts_t *opts, const char *name, double value);
/* The value of `name` the rule will use: the one set, else the row's default
 * (NaN for an unknown name). */
double bn_rule_opts_get(const bn_rule_opts_t *opts, const char *name);
bool bn_rule_opts_isset(const bn_rule_opts_t *opts, const char *name);
/* Checks what single values cannot: the kind exists, lr >= 0, bucketing
 * only before rules that take it.  BN_OK or BN_EARG with a message. */
int  bn_rule_opts_check(const bn_rule_opts_t *opts, char *err, size_t errlen);
/* Canonical text "rule=NAME p1=v1 p2=v2 ..." of the rule and the effective
 * value of every parameter it reads (its rows, then bucketing if it takes
 * it), %.9g; for the config fingerprint and the run's JSON.  Returns the
 * length snprintf would write. */
int  bn_rule_opts_canon(const bn_rule_opts_t *opts, char *buf, size_t len);

/* `byznode rules`: every rule, its one-line summary and flags, and its
 * parameters with default and range.  file is a FILE *. */
void bn_rule_list(void *file);
/* The parameter lines of `byznode node --help` (one per distinct row, with
 * the rules that read it), in the options table's format.  file is a FILE *. */
void bn_rule_print_params(void *file);

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

/* Streaming, optional (aggregation at the floor: the per-neighbour work done
 * while waiting for the others).  Once per round, as soon as the node's own
 * x_prev and x_self are final, call bn_rule_begin; then, for each neighbour
 * vector as it arrives, bn_rule_observe with slot = the index it will have
 * in in->x_nb.  The vectors (and x_prev, x_self) are borrowed: they must stay
 * valid and unchanged until bn_rule_aggregate, which must then be passed the
 * same x_prev / x_self pointers.  The result is bit-identical with or
 * without these calls (a slot whose pointer differs, or a round without
 * begin, is simply computed in aggregate); rules without streaming ignore
 * them.  Allocate nothing.  BN_EARG for a NULL rule or vector or slot >= max_k. */
int bn_rule_begin(bn_rule_t *self, const float *x_prev, const float *x_self);
int bn_rule_observe(bn_rule_t *self, uint32_t slot, const float *x);

#endif
