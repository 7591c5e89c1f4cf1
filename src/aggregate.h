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
#include "rules/types.h"   /* the types the rules share with this module */

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

/* For tests and telemetry: the reputation of `id` held by rule object r
 * (ops->reputation), or 0 if never seen or the rule keeps none; the rule
 * object's state and its operations table (rules/rules.h). */
double bn_rules_reputation(const bn_rule_t *r, uint32_t id);
void *bn_rule_state(const bn_rule_t *r);
const struct bn_rule_ops *bn_rule_ops_of(const bn_rule_t *r);

/* Streaming, optional (aggregation at the floor: the per-neighbour work done
 * while waiting for the others).  Once per round, as soon as the node's own
 * x_prev and x_self are final, call bn_rule_begin; then, for each neighbour
 * vector as it arrives, bn_rule_observe with a slot < max_k that is at least
 * the index the vector will have in in->x_nb and increases in x_nb order
 * (the index itself, or, as the node does, the neighbour's position in its
 * neighbour list when x_nb leaves out the models that never came).  The
 * vectors (and x_prev, x_self) are borrowed: they must stay valid and
 * unchanged until bn_rule_aggregate (unless bn_rule_streams: then the
 * neighbour vectors only until bn_rule_observe returns), which must then be
 * passed the same x_prev / x_self pointers; an observed vector is
 * recognised there by its slot (in->slot) or else its pointer.  The
 * result is bit-identical with or without these calls (a
 * vector not observed, or a round without begin, is simply computed in
 * aggregate; stats.streamed counts the vectors whose observed work was
 * used); rules without streaming ignore them.  Allocate nothing.  BN_EARG
 * for a NULL rule or vector or slot >= max_k. */
int bn_rule_begin(bn_rule_t *self, const float *x_prev, const float *x_self);
int bn_rule_observe(bn_rule_t *self, uint32_t slot, const float *x);
/* Whether bn_rule_observe consumes the vector (the rule has
 * BN_RULE_F_STREAMS and no bucketing): the caller may then release it right
 * after the call and pass bn_rule_aggregate a NULL x_nb[j] with in->slot[j]
 * naming the slot; the rule then holds O(dim) for the round, not
 * O(k dim).  Every slot observed in the round must then be in x_nb. */
bool bn_rule_streams(const bn_rule_t *self);

#endif
