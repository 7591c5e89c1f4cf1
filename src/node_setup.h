/*  node_setup.h -- constructing and destroying a node, and its checkpoints.
 *
 *  bn_node_new loads the swarm file, derives the schedule from the options
 *  alone (R = bn_schedule_rounds_per_epoch(train_size, n, batch,
 *  local_steps), never a file's size), loads this node's data, builds the
 *  model, rule, transport (with fault injection), graphs and inbox, resumes
 *  from <out>/checkpoint-<id>.bin when there is one of this configuration
 *  (a finished run sets nd->finished and does nothing), and opens
 *  <out>/node-<id>.jsonl (append after a resume).  An --out that cannot be
 *  created or written is an error, as is any other failure: NULL with a
 *  one-line reason in err.  bn_node_destroy releases everything and nulls
 *  *self_p; safe on NULL and twice.
 */
#ifndef BN_NODE_SETUP_H
#define BN_NODE_SETUP_H

#include "node_state.h"

bn_node_t *bn_node_new(const bn_options_t *opt, volatile sig_atomic_t *stop, char *err, size_t errlen);
void bn_node_destroy(bn_node_t **self_p);

/* After an epoch: saves a checkpoint when one is due (every checkpoint_every
 * epochs, and after the last one, so that a rerun knows it is finished).  A
 * failure is a warning: the run goes on. */
void bn_node_checkpoint(bn_node_t *nd);

/* The oracle's fixed batch (mozi, bygars, bygars++ evaluate on it): the
 * whole held-out auxiliary set nd->aux when the rule has one (at most 512
 * images), else min(--batch, 512) evenly spaced images of the training
 * shard.  Writes the indices (cap >= 512) and their count; returns the set
 * they index. */
const bn_dataset_t *bn_node_oracle_batch(const bn_node_t *nd, uint32_t *idx, uint32_t *n);

#endif
