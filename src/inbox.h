/*  inbox.h -- what a node receives: message admission, the early-message
 *  ring, and liveness (giving up on neighbours, taking them back, catching
 *  up with the swarm).  docs/protocol.md, sections "Admission" and
 *  "Liveness", is the specification this module implements.
 *
 *  Admission (bn_inbox_admit) runs the checks of docs/protocol.md in order
 *  and either keeps the message's payload in a slot or drops it under one
 *  bn_drop_reason_t (counted, and logged once per sender and reason).  Slots
 *  form a ring of W = future_rounds rounds by n senders: a MODEL for round
 *  r' with current <= r' < current + W waits in slot (r' mod W, sender); a
 *  COLLUDE (attackers only) in a second ring keyed by the honest origin.
 *
 *  Liveness.  A neighbour that missed two rounds in a row is given up: the
 *  node no longer waits for it (bn_inbox_waits_for is false) until a valid
 *  model of it arrives, which takes it back from the first round of ours it
 *  can serve (that model's round if it is ours or later; our next round if
 *  it is behind).  A MODEL that passes every check but is for a round at or
 *  beyond current + W is dropped as `future`, and also remembered, with its
 *  payload, as "neighbour j is at round >= r'".  When q distinct neighbours
 *  are remembered so (q = min(b + 1, degree), b the swarm's Byzantine bound,
 *  so at least one of them is honest when at most b lie), bn_inbox_catch_up
 *  returns the round to skip to: the q-th highest such round, where an
 *  honest neighbour has been.  bn_inbox_jump moves the inbox there: the
 *  remembered models of the target's window go into their slots, the
 *  neighbours remembered at or below the target are waited for again, those
 *  above it from their remembered round on.
 *
 *  Ownership: the inbox owns the payloads it keeps; pointers returned by
 *  bn_inbox_model / _relay / _model_buf stay valid until the slot's round is
 *  released by bn_inbox_begin_round or bn_inbox_jump, or the model's payload
 *  by bn_inbox_release (a node whose rule consumed it: bn_rule_streams).  A
 *  released model still counts as arrived (bn_inbox_has, liveness,
 *  duplicates); only its payload is gone.
 */
#ifndef BN_INBOX_H
#define BN_INBOX_H

#include "common.h"
#include "graphs.h"
#include "transport.h"
#include "wire.h"

typedef struct {
    uint32_t     n, self;        /* swarm size, our id                          */
    uint32_t     dim;            /* model dimension                             */
    uint32_t     window;         /* W = future_rounds, >= 1                     */
    uint32_t     rounds_per_epoch;   /* R                                       */
    uint32_t     epochs;         /* the run is rounds [0, epochs * R)           */
    uint32_t     byzantine;      /* b: the quorum is min(b + 1, degree)         */
    uint64_t     swarm_id, config_fp;
    bool         curve;          /* senders must be authenticated               */
    const bool  *is_byz;         /* attackers: fellow attackers (borrowed, n);
                                    NULL for an honest node: COLLUDE is refused */
    bn_graphs_t *graphs;         /* borrowed                                    */
} bn_inbox_opts_t;

typedef struct {
    uint64_t drops[BN_DROP_COUNT];   /* cumulative, per reason */
    uint64_t peers_given_up, peers_restored;
    uint64_t early;          /* models admitted for a round after the current one */
    uint64_t payloads_max;   /* most payloads held at once (slots, relays, far)   */
} bn_inbox_stats_t;

typedef struct bn_inbox_t bn_inbox_t;

/* NULL when out of memory. */
bn_inbox_t *bn_inbox_new(const bn_inbox_opts_t *o);
void bn_inbox_destroy(bn_inbox_t **self_p);

/* The node starts `round` (g: that round's epoch graph, for the quorum's
 * degree): slots of earlier rounds are released. */
void bn_inbox_begin_round(bn_inbox_t *ib, uint64_t round, const bn_topology_t *g);

/* Admits or drops one received message; the payload of an admitted one is
 * taken from msg (the caller still destroys msg).  Returns BN_DROP_NONE or
 * the reason it was dropped (already counted). */
bn_drop_reason_t bn_inbox_admit(bn_inbox_t *ib, bn_msg_t *msg);

/* Counts (and logs once per peer and reason) a message the node dropped
 * before admission: a same-host model whose slot it could not read (shm.h).
 * Returns why. */
bn_drop_reason_t bn_inbox_drop(bn_inbox_t *ib, uint32_t peer, bn_drop_reason_t why);

/* The model of `peer` for `round` if admitted and not released, else NULL. */
const float *bn_inbox_model(const bn_inbox_t *ib, uint64_t round, uint32_t peer);
/* Whether the model of `peer` for `round` was admitted (released or not). */
bool bn_inbox_has(const bn_inbox_t *ib, uint64_t round, uint32_t peer);
/* Frees the payload of that model, which still counts as arrived. */
void bn_inbox_release(bn_inbox_t *ib, uint64_t round, uint32_t peer);
const bn_buf_t *bn_inbox_model_buf(const bn_inbox_t *ib, uint64_t round, uint32_t peer);
/* Attackers: the relayed model of honest `origin` for `round`, else NULL. */
const float *bn_inbox_relay(const bn_inbox_t *ib, uint64_t round, uint32_t origin);
/* Attackers: the relay of `origin` for `round` has spoken: its model, or an
 * empty COLLUDE saying it has none (so there is nothing to wait for). */
bool bn_inbox_relay_settled(const bn_inbox_t *ib, uint64_t round, uint32_t origin);

/* Whether the current round waits for `peer`'s model: bn_inbox_live, and
 * its model of this round has not come as a non-finite one (dropped as
 * `nonfinite`; it will not send another). */
bool bn_inbox_waits_for(const bn_inbox_t *ib, uint32_t peer);
/* Whether `peer` is taking part: false while it is given up, and false once
 * a valid model of it for a round two or more later has arrived (a peer
 * sends in round order and one connection delivers in order, so this
 * round's was lost). */
bool bn_inbox_live(const bn_inbox_t *ib, uint32_t peer);
/* Closes `round` for the k peers it expected: each whose model is not there
 * missed it (two in a row: given up), unless a model of it two or more
 * rounds later has come (it is alive; this round's was lost).  Returns how many are missing. */
uint32_t bn_inbox_close_round(bn_inbox_t *ib, uint64_t round, const uint32_t *peers, uint32_t k);

/* The round to skip ahead to, or UINT64_MAX while no quorum says so. */
uint64_t bn_inbox_catch_up(const bn_inbox_t *ib);
/* The node skips to `round` (it calls this when it decides to, before the
 * skipped rounds): see "Liveness" above; the memory of who is ahead is
 * cleared. */
void bn_inbox_jump(bn_inbox_t *ib, uint64_t round);

const bn_inbox_stats_t *bn_inbox_stats(const bn_inbox_t *ib);

#endif
