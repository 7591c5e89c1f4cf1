/*  checkpoint.h -- a node's resumable state, written atomically.
 *
 *  DIR/checkpoint-<id>.bin holds the model, the SGD momentum, the position
 *  (next epoch, next global round), the random states and the batch order.
 *  It is written to a temporary file, flushed, and renamed over the old one,
 *  so a crash leaves either the old or the new checkpoint, never half of one.
 *  Loading checks magic, version, sizes and a 64-bit checksum before touching
 *  the caller's buffers.
 */
#ifndef BN_CHECKPOINT_H
#define BN_CHECKPOINT_H

#include "common.h"
#include "rng.h"

typedef struct {
    uint32_t epoch;           /* next epoch to run                          */
    uint64_t round;           /* next global round                          */
    size_t   dim;
    float   *x;               /* dim floats (borrowed; filled on load)      */
    float   *velocity;        /* dim floats or NULL (borrowed)              */
    bool     sgd_started;
    bn_rng_t batch_rng, attack_rng;
    uint32_t *order;          /* order_n entries (borrowed; filled on load) */
    uint32_t order_n, order_pos;
} bn_checkpoint_t;

int bn_checkpoint_save(const char *dir, uint32_t id, const bn_checkpoint_t *ck,
                       char *err, size_t errlen);

/* Fills ck (whose dim, x, velocity, order and order_n say what is expected).
 * BN_EIO if there is no checkpoint; BN_EFORMAT if it is corrupt or from a
 * different model or shard (then ck's buffers are untouched). */
int bn_checkpoint_load(const char *dir, uint32_t id, bn_checkpoint_t *ck,
                       char *err, size_t errlen);

#endif
