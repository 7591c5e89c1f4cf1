/*  rng.h -- deterministic random numbers (xoshiro256** seeded by splitmix64).
 *
 *  All randomness in byznode comes from explicit bn_rng_t states derived from
 *  the run's seed and a stream constant, so that every host computes the same
 *  topology, partition, initial model and Byzantine set from the same seed.
 *  The generator is specified bit for bit (no libc rand), so results do not
 *  depend on the platform.
 */
#ifndef BN_RNG_H
#define BN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } bn_rng_t;

/* Stream constants: one per use of randomness.  Per-node streams add the node id. */
enum {
    BN_STREAM_INIT      = 1,   /* initial model parameters (same on every node) */
    BN_STREAM_PARTITION = 2,   /* data partition                                  */
    BN_STREAM_TOPOLOGY  = 3,   /* Erdos-Renyi graphs                              */
    BN_STREAM_BYZANTINE = 4,   /* which nodes are Byzantine                       */
    BN_STREAM_BATCH     = 5,   /* + node id: mini-batch order                     */
    BN_STREAM_ATTACK    = 6,   /* + node id: attack noise                         */
    BN_STREAM_FAULT     = 7,   /* + node id: injected delay and loss              */
    BN_STREAM_EVAL      = 8,   /* evaluation subsets                              */
    BN_STREAM_AUX       = 9,   /* + node id: the held-out auxiliary set (bygars)  */
};

/* Seeds `r` from (seed, stream); distinct streams are independent. */
void     bn_rng_seed(bn_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t bn_rng_next(bn_rng_t *r);
/* Uniform double in [0, 1), 53 bits. */
double   bn_rng_uniform(bn_rng_t *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t bn_rng_below(bn_rng_t *r, uint64_t n);
/* Standard normal (Box-Muller on bn_rng_uniform). */
double   bn_rng_normal(bn_rng_t *r);
/* Gamma(alpha, 1), alpha > 0 (Marsaglia-Tsang). */
double   bn_rng_gamma(bn_rng_t *r, double alpha);
/* Fisher-Yates shuffle of a[0..n). */
void     bn_rng_shuffle_u32(bn_rng_t *r, uint32_t *a, size_t n);

/* splitmix64 finaliser: a good 64-bit mix, used for hashing and seed derivation. */
uint64_t bn_mix64(uint64_t x);

#endif
