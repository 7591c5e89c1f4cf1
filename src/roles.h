/*  roles.h -- who is Byzantine, and the round schedule: the facts every host
 *  of a swarm derives from the swarm-wide options alone.
 *
 *  A bottom-layer module (it includes common.h and rng.h only), so the node,
 *  the monitor and the CLI can all use it without reaching into each other.
 *  Both functions are pure: the same arguments give the same answer on every
 *  host, which is what lets a swarm spread over machines agree without
 *  talking.
 */
#ifndef BN_ROLES_H
#define BN_ROLES_H

#include "common.h"

/* The Byzantine set of a run: is_byz[0..n) gets true for the b nodes drawn
 * from (seed, BN_STREAM_BYZANTINE) by a Fisher-Yates shuffle of 0..n-1 whose
 * first b entries attack (docs/protocol.md gives the exact draw).  Returns
 * BN_OK, or BN_ENOMEM (is_byz then all false). */
int bn_roles_byzantine(uint64_t seed, uint32_t n, uint32_t b, bool *is_byz);

/* Rounds per epoch R: the mean shard, ceil(train_size / n) images, walked
 * in steps of batch * local_steps, rounded up, at least 1.  train_size is
 * the swarm-wide size of the training set (60,000 for Fashion-MNIST), never
 * a local file's size: two hosts must agree on R to agree on epochs. */
uint32_t bn_schedule_rounds_per_epoch(uint32_t train_size, uint32_t n, uint32_t batch,
                                      uint32_t local_steps);

#endif
