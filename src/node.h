/*  node.h -- one byznode process: Algorithm 1 of 002_9f36060eb9cf48f4.txt.
 *
 *  A node trains its model with local SGD on its own data, and every
 *  local_steps steps ("gossip after local update") sends x_i^{t+1} to its
 *  neighbours in the epoch's graph, collects theirs for the same round until
 *  all arrived or the round timeout passed, and aggregates with its rule.  An
 *  attacker (options.attack != none) runs the same schedule and protocol but
 *  sends a crafted vector.  Per epoch the node evaluates, writes a JSON line
 *  to its out directory and sends a REPORT (with its model) to the monitor.
 *
 *  Ownership: the node owns everything it allocates; bn_node_run frees it all
 *  before returning.  It never crashes on what a peer sends: every message is
 *  validated, and dropped messages are counted per peer and reason.
 */
#ifndef BN_NODE_H
#define BN_NODE_H

#include <signal.h>

#include "options.h"

/* Runs the node to completion.  *stop (may be NULL) is polled: when it becomes
 * non-zero the node finishes the current round and exits cleanly.  Returns
 * BN_OK, or an error code after printing a one-line reason. */
int bn_node_run(const bn_options_t *opt, volatile sig_atomic_t *stop);

#endif
