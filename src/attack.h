/*  attack.h -- what a Byzantine node sends instead of its honest model.
 *
 *  Attackers run the same node loop and wire protocol as honest nodes; in
 *  place of x_i^{t+1} they send bn_attack_craft()'s vector.  The honest
 *  models they know this round are either their honest neighbours' (`local`)
 *  or every honest model the colluding attackers heard (`omniscient`).
 *
 *    dlie       mu + z * sigma (coordinate-wise over known honest models), z = 2
 *    random     Gaussian vector scaled to the norm of the honest mean
 *    reverse    minus the honest mean
 *    sign-flip  its own update negated: x_prev - (x_self - x_prev)
 *    gaussian   N(0, std^2) per coordinate, std = 200
 *    label-flip trains on 9 - y and sends its model as is
 *    ipm        -epsilon * honest mean (inner-product manipulation), epsilon = 0.1
 *    alie       mu + z * sigma with z from (n, b) as in Baruch et al.
 *    mimic      copies one honest model (the lowest honest id it knows)
 *    constant   every coordinate = value (default 1.0)
 *    crash      sends nothing
 *    nan        every coordinate NaN
 *
 *  Adaptive attacks (per victim: one vector for each honest neighbour h,
 *  built from h's own new model x_h; docs/attacks.md gives the mechanism):
 *    echo       x_h
 *    drift      x_h + s u, u one direction shared by every victim (reverse of
 *               the honest mean, a fixed random direction, or toward a target)
 *    dissensus  x_h + s (x_h - mean of h's honest neighbours) / ||...||
 *    minmax     x_h + gamma u, gamma the largest keeping the vector within the
 *               honest neighbourhood's diameter (Shejwalkar & Houmansadr)
 *    minsum     the same with the sum of squared distances
 *  s = scale * r_h, r_h the median distance from x_h to h's honest neighbours.
 *
 *  The seed papers' remaining attacks, on the model a node sends
 *  (Delta = x_self - x_prev its own update, g_h = h - x_prev an honest one):
 *    random-sign-flip  x_prev + r Delta, r ~ N(0, rsf_std^2) each round (ByGARS)
 *    ofom       coordinate-wise beyond the honest extremes, against the honest
 *               direction of change (full knowledge; ByGARS after Cronus)
 *    paf        mu -/+ (3..4) sigma against the honest direction (partial)
 *    model-negation  x_prev - k sum_h g_h, k = 1e10 (BrSGD)
 *    gradient-scale  x_prev + k Delta, k = 1e10 (BrSGD)
 *    normalized-mean x_prev - r sum_h g_h / ||g_h||, r the median ||g_h|| (He et al.)
 *    mimic2     the mean of one of two clusters of the honest models (He et al.)
 *    mixed      each attacker runs its own attack from attack-mix (ByGARS)
 */
#ifndef BN_ATTACK_H
#define BN_ATTACK_H

#include "common.h"
#include "rng.h"
#include "topology.h"

typedef enum {
    BN_ATTACK_NONE, BN_ATTACK_DLIE, BN_ATTACK_RANDOM, BN_ATTACK_REVERSE,
    BN_ATTACK_SIGN_FLIP, BN_ATTACK_GAUSSIAN, BN_ATTACK_LABEL_FLIP, BN_ATTACK_IPM,
    BN_ATTACK_ALIE, BN_ATTACK_MIMIC, BN_ATTACK_CONSTANT, BN_ATTACK_CRASH,
    BN_ATTACK_NAN, BN_ATTACK_ECHO, BN_ATTACK_DRIFT, BN_ATTACK_DISSENSUS, BN_ATTACK_MINMAX,
    BN_ATTACK_MINSUM, BN_ATTACK_RANDOM_SIGN_FLIP, BN_ATTACK_OFOM, BN_ATTACK_PAF,
    BN_ATTACK_MODEL_NEGATION, BN_ATTACK_GRADIENT_SCALE, BN_ATTACK_NORMALIZED_MEAN, BN_ATTACK_MIMIC2,
    BN_ATTACK_MIXED, BN_ATTACK_COUNT
} bn_attack_kind_t;

#define BN_ATTACK_MIX_MAX 256   /* attack-mix text, with its terminating NUL */

/* Direction u of drift, minmax and minsum. */
typedef enum {
    BN_DRIFT_REVERSE,   /* -mu / ||mu||, mu the mean of every known honest model      */
    BN_DRIFT_RANDOM,    /* a fixed pseudo-random unit vector (same every round, every
                         * attacker: drawn from the run seed)                          */
    BN_DRIFT_TARGET,    /* (t - x_h) / ||t - x_h||, t the model of honest node
                         * drift_target when known this round, else the zero model     */
    BN_DRIFT_COUNT
} bn_drift_dir_t;

typedef struct {
    bn_attack_kind_t kind;
    float    z;             /* dlie, default 2.0                                 */
    float    epsilon;       /* ipm, default 0.1                                  */
    float    gaussian_std;  /* gaussian, default 200                             */
    float    value;         /* constant, default 1.0                             */
    uint32_t n, b;          /* alie: swarm size and Byzantine count              */
    float    drift_scale;   /* drift: s in multiples of r_h, default 1.0         */
    bn_drift_dir_t drift_dir;   /* drift, minmax, minsum: default reverse         */
    uint32_t drift_target;  /* direction target: honest id, UINT32_MAX = the zero model */
    float    dissensus_scale;   /* dissensus: s in multiples of r_h, default 1.0  */
    uint64_t seed;          /* run seed (drift random direction); set by options  */
    float    rsf_std;       /* random-sign-flip: std of r, default 10            */
    float    fang_b;        /* ofom: stretch factor beyond the extremes, default 2 */
    float    negation_scale;    /* model-negation: k, default 1e10                */
    float    gradient_scale;    /* gradient-scale: k, default 1e10                */
    char     mix[BN_ATTACK_MIX_MAX];    /* mixed: "NAME,NAME,..." and/or "ID:NAME,..." */
} bn_attack_opts_t;

void bn_attack_opts_default(bn_attack_opts_t *opts, bn_attack_kind_t kind);
int  bn_attack_parse(const char *name, bn_attack_kind_t *kind);
const char *bn_attack_name(bn_attack_kind_t kind);

/* Does the attacker run local SGD (none, sign-flip, label-flip,
 * random-sign-flip, gradient-scale)? */
bool bn_attack_trains(bn_attack_kind_t kind);
/* Does it need the honest models of the round (dlie, random, reverse, ipm, alie, mimic)? */
bool bn_attack_needs_honest(bn_attack_kind_t kind);

/* Does it craft one vector per honest neighbour (victim) instead of one for
 * all?  The node then calls bn_attack_craft once per victim, with
 * in->victim and in->victim_x set, and sends each vector to its victim only. */
bool bn_attack_per_victim(bn_attack_kind_t kind);

/* Checks an attack-mix text: comma-separated entries, each NAME (handed out
 * in turn to the Byzantine ids that no ID:NAME entry names, by rank) or
 * ID:NAME; NAME any attack but none and mixed.  BN_OK or BN_EARG with a
 * message naming the bad entry. */
int bn_attack_mix_check(const char *mix, char *err, size_t errlen);

/* A `mixed` attacker's own attack: if opts->kind is BN_ATTACK_MIXED, sets it
 * to the entry of opts->mix for node id of a swarm of n nodes whose b
 * Byzantine ids come from bn_roles_byzantine(seed, n, b): its ID:NAME entry,
 * else the bare entry (rank mod count), rank = its position among the
 * Byzantine ids not named by an ID entry in ascending order (id itself when
 * it is not in that set).  Other kinds are left alone.  BN_OK, BN_EARG (bad
 * mix, or no entry for this id) or BN_ENOMEM. */
int bn_attack_resolve(bn_attack_opts_t *opts, uint32_t id, uint64_t seed, uint32_t n, uint32_t b,
                      char *err, size_t errlen);

int bn_drift_dir_parse(const char *name, bn_drift_dir_t *dir);
const char *bn_drift_dir_name(bn_drift_dir_t dir);

/* z of "a little is enough" for n nodes of which b Byzantine:
 * s = floor(n / 2 + 1) - b, z = Phi^-1((n - s) / n). */
double bn_attack_alie_z(uint32_t n, uint32_t b);

/* Phi^-1(p), the standard normal quantile: Acklam's rational approximation
 * refined by one Halley step on erfc (agrees with reference quantiles to
 * 1e-13 relative, tested from p = 1e-300 to 1 - 1e-6).  -inf for p == 0,
 * +inf for p == 1, NaN outside [0, 1].  (alie_z clamps s to [1, n - 1], so
 * its z is always finite; n < 2 gives 0.) */
double bn_attack_norm_quantile(double p);

typedef struct {
    size_t dim;
    uint32_t n_honest;             /* honest models known this round            */
    const float *const *honest;    /* n_honest vectors (borrowed)               */
    const uint32_t *honest_id;     /* their ids                                 */
    const float *x_prev, *x_self;  /* the attacker's own model before / after its local step */
    bn_rng_t *rng;                 /* attack noise                              */
    /* Per-victim attacks (bn_attack_per_victim): the honest neighbour this
     * vector is crafted for, and the model it sent this round (borrowed;
     * NULL when unknown).  UINT32_MAX / NULL for a broadcast craft. */
    uint32_t victim;
    const float *victim_x;
    /* The round's graph (borrowed; may be NULL): per-victim attacks take the
     * victim's honest neighbours to be the known honest models adjacent to
     * it in this graph, or every known honest model but its own when NULL. */
    const bn_topology_t *graph;
    /* Optional (may be NULL): a cache of the distances ||honest[i] -
     * honest[j]|| (n_honest x n_honest doubles, row-major), NaN where not
     * yet computed, shared by the per-victim crafts of one round: minmax and
     * minsum need every pair of the victim's neighbourhood, and neighbourhoods
     * overlap.  The caller fills it with NaN (bn_attack_pair_cache_reset)
     * whenever honest[] changes.  The same values as without it, bit for bit. */
    double *pair_dist;
} bn_attack_input_t;

/* Marks every entry of a pair-distance cache for k honest models as not yet
 * computed (k x k NaN). */
void bn_attack_pair_cache_reset(double *pair_dist, uint32_t k);

/* Writes the vector to send into out (dim floats).  Returns BN_OK, or BN_EARG
 * when the attack needs honest models and n_honest == 0 (out then holds
 * x_self, so the attacker still sends something plausible).  A per-victim
 * attack whose victim_x is NULL writes the honest mean and returns BN_EARG.
 * For crash the caller sends nothing; out is untouched.  out must not alias
 * any input vector. */
int bn_attack_craft(const bn_attack_opts_t *opts, const bn_attack_input_t *in, float *out);

#endif
