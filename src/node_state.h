/*  node_state.h -- the state of one running node, shared by the node-loop
 *  modules (node.c, node_setup.c, node_io.c, node_report.c, adversary.c) and
 *  by nobody else.
 *
 *  Ownership: everything a bn_node_t points to is owned by it and released
 *  by bn_node_destroy (node_setup.h), except opt.* strings (copied in) and
 *  stop (the caller's flag).  Round numbers are global: round r belongs to
 *  epoch r / R.
 */
#ifndef BN_NODE_STATE_H
#define BN_NODE_STATE_H

#include <signal.h>
#include <stdio.h>

#include "aggregate.h"
#include "dataset.h"
#include "graphs.h"
#include "inbox.h"
#include "metrics.h"
#include "model.h"
#include "options.h"
#include "rng.h"
#include "sgd.h"
#include "refpipe.h"
#include "shm.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"

typedef struct {
    bn_options_t   opt;
    bn_swarm_t     swarm;
    uint32_t       n, id;
    bool           honest;       /* runs the honest round (attack none)          */
    bool           byz_id;       /* in the swarm's Byzantine set: reports as one,
                                    even when it runs honestly (--attack none)    */
    bool          *is_byz;       /* known to attackers only; honest nodes never read it */
    uint64_t       config_fp;    /* bn_options_fingerprint(&opt) */
    volatile sig_atomic_t *stop; /* the caller's, may be NULL */

    bn_transport_t *tr;
    bn_shm_t      *shm;          /* same-host models (shm.h); NULL under CURVE */
    uint64_t       shm_sent;     /* MODEL_SHM messages sent, cumulative */
    bn_refpipe_t  *refs;         /* our reference FIFO (refpipe.h); NULL: the sockets */
    bn_graphs_t   *graphs;
    bn_inbox_t    *inbox;
    bn_model_t    *model;
    size_t         dim;
    float         *x, *x_prev, *x_out, *grad, *craft, *bx;
    double        *pair_dist;  /* attackers: n x n distances of a round (adversary.c), lazily */
    uint8_t       *by;
    bn_sgd_t       sgd;
    bn_rule_t     *rule;
    bn_rng_t       batch_rng, attack_rng;

    bn_dataset_t   train, test;
    bn_dataset_t   aux;          /* held out of train for the oracle, or n = 0 */
    uint32_t      *order, order_pos;
    bool           eval_partial; /* test holds only the eval subset */
    uint32_t       R;            /* rounds per epoch, from the options alone (roles.h) */
    uint64_t       round;        /* current global round */
    uint32_t       epoch;
    uint32_t       first_epoch;  /* after a resume: the checkpoint's */
    bool           resumed;      /* this run started from a checkpoint */
    bool           finished;     /* the checkpoint says the run is over: nothing to do */
    uint64_t       skip_to;      /* catching up: rounds below it are skipped; 0 = none */
    bool           rejoining;    /* resumed or skipped ahead, no neighbour model aggregated yet */
    bool           diverged;     /* the model went non-finite (logged once) */

    const bn_topology_t *g;      /* current epoch's graph (pinned in graphs) */
    const uint32_t *nbr;
    uint32_t       deg;

    /* per-epoch accounting (node_report.h) */
    bn_report_t    rep;
    float         *weight_acc;   /* n */
    float         *round_w;      /* n + 1 */
    const float  **nb_ptr;       /* n: the models a round aggregates */
    uint32_t      *nb_id;        /* n */
    uint32_t      *nb_slot;      /* n: observe slot of nb_ptr[i] (UINT32_MAX: none) */
    uint8_t       *nb_seen;      /* n: neighbour i's model of this round went to bn_rule_observe */
    double         train_loss_sum;
    uint64_t       train_steps;
    bn_transport_stats_t tr_at_epoch;
    bn_inbox_stats_t in_at_epoch;
    struct { uint64_t sent, received; } shm_at_epoch;   /* shm_sent, shm stats' received */
    bn_proc_usage_t  use_at_epoch;   /* the process's CPU time and switches at the epoch's start */
    FILE          *jsonl;
    char           jsonl_path[BN_PATH_MAX + 64];
} bn_node_t;

/* ---- node_io.c: the message path of a round ---------------------------- */

/* A header for this node's current (epoch, round). */
void bn_node_header(const bn_node_t *nd, bn_wire_header_t *h, uint32_t kind, uint32_t origin);
/* Sends vec as this round's MODEL to every neighbour (to_honest_only: to
 * every honest neighbour; attackers only), or to neighbour `only` when it is
 * not UINT32_MAX.  A model for every neighbour alike goes once into the
 * node's shared-memory ring, and its same-host neighbours get a MODEL_SHM
 * naming the slot (shm.h); one for `only` (an attacker's per-victim model)
 * always goes through the socket. */
void bn_node_send_model(bn_node_t *nd, const float *vec, bool to_honest_only, uint32_t only);

/* Which peers a round waits for: done(nd, round) says when all are there. */
typedef bool (*bn_node_done_fn)(bn_node_t *nd, uint64_t round);
/* Admits one received message: a MODEL_SHM is first read from the sender's
 * ring into the MODEL it stands for (a slot that cannot be read is a counted
 * drop); everything then goes through bn_inbox_admit. */
void bn_node_admit(bn_node_t *nd, bn_msg_t *msg);
/* Receives and admits messages until done(round), the deadline (bn_now()
 * seconds), a stop request, or a catch-up target appears (the inbox saw a
 * quorum of neighbours far ahead).  True if done. */
bool bn_node_collect(bn_node_t *nd, uint64_t round, double deadline, bn_node_done_fn done);
/* The deadline of a round that starts now. */
double bn_node_deadline(const bn_node_t *nd);
/* Closes a round: counts neighbours' missing models (attackers: the honest
 * ones only) and a timeout. */
void bn_node_close_round(bn_node_t *nd, bool completed);

/* ---- node.c: local training, used by both roles ------------------------ */

/* local_steps SGD steps on nd->x (label-flip attackers flip their labels). */
void bn_node_local_steps(bn_node_t *nd);

#endif
