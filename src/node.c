/*  node.c -- the node loop (Algorithm 1, gossip after local update); see node.h.
 *
 *  Round r of epoch e = r / R:
 *    1. x_prev = x; local_steps SGD steps on x (honest and training attackers)
 *    2. honest: send x to every neighbour of the epoch's graph
 *       attacker: gather the honest models it can know, craft, send
 *    3. collect the neighbours' MODEL messages of round r until all are there
 *       (a neighbour that missed two rounds running is not waited for) or the
 *       round deadline passes
 *    4. x = rule(x_prev, x, received)
 *  Early messages (rounds r+1 .. r+future_rounds-1) wait in a ring of slots,
 *  one per (round mod W, sender); anything else is dropped and counted.
 */
#include "node.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "fault.h"
#include "metrics.h"
#include "model.h"
#include "partition.h"
#include "rng.h"
#include "roles.h"
#include "sgd.h"
#include "swarmfile.h"
#include "topology.h"
#include "transport.h"
#include "wire.h"

extern void openblas_set_num_threads(int);

#define S_TOPO_CACHE 4

typedef struct {
    bool      full;
    uint64_t  round;
    zmq_msg_t msg;              /* payload frame, 4-byte aligned data */
} s_slot_t;

typedef struct {
    bool          valid;
    uint32_t      epoch;        /* BN_TOPOLOGY_STATIC for a static graph */
    bn_topology_t g;
} s_topo_t;

typedef struct {
    bn_options_t   opt;
    bn_swarm_t     swarm;
    uint32_t       n, id;
    bool           honest;
    bool          *is_byz;       /* known to attackers only; honest nodes never read it */
    volatile sig_atomic_t *stop;

    bn_transport_t *tr;
    bn_model_t    *model;
    size_t         dim;
    float         *x, *x_prev, *x_out, *grad, *craft, *bx;
    uint8_t       *by;
    bn_sgd_t       sgd;
    bn_rule_t     *rule;
    bn_fault_t    *fault;
    bn_rng_t       batch_rng, attack_rng;

    bn_dataset_t   train, test;
    uint32_t      *order, order_pos;
    bool           eval_partial;  /* test holds only the eval subset */
    uint32_t       R;            /* rounds per epoch */
    uint64_t       round;        /* current global round */
    uint32_t       epoch;

    s_topo_t       topo[S_TOPO_CACHE];
    const bn_topology_t *g;      /* current epoch's graph (in topo[]) */
    const uint32_t *nbr;
    uint32_t       deg;

    uint32_t       W;            /* slot ring depth = future_rounds */
    s_slot_t      *slots;        /* W * n, MODEL messages           */
    s_slot_t      *cslots;       /* W * n, COLLUDE by origin (attackers) */
    uint8_t       *misses;       /* consecutive rounds missed per peer */
    uint32_t      *logged;       /* bitmask of drop reasons logged per peer (n + 1: unknown) */
    bool           rejoining;    /* resumed from a checkpoint, not yet aggregated a neighbour */
    uint64_t       catch_up;     /* lowest round a neighbour was seen at beyond the window, or UINT64_MAX */

    /* per-epoch accounting */
    bn_report_t    rep;
    float         *weight_acc;   /* n */
    float         *round_w;      /* n + 1 */
    const float  **nb_ptr;
    uint32_t      *nb_id;
    double         train_loss_sum;
    uint64_t       train_steps;
    uint64_t       drops_total[BN_DROP_COUNT];
    bn_transport_stats_t tr_at_epoch;
    bn_fault_stats_t fault_at_epoch;
    FILE          *jsonl;
} s_node_t;

/* ---- drops ------------------------------------------------------------- */

static void s_drop(s_node_t *nd, uint32_t peer, bn_drop_reason_t why)
{
    nd->rep.drops[why]++;
    nd->drops_total[why]++;
    uint32_t who = peer < nd->n ? peer : nd->n;
    if (!(nd->logged[who] & (1u << why))) {
        nd->logged[who] |= 1u << why;
        if (who < nd->n)
            BN_WARN("dropping messages from node %u: %s (logged once per peer and reason)",
                    who, bn_drop_reason_name(why));
        else
            BN_WARN("dropping messages from an unidentified sender: %s (logged once)",
                    bn_drop_reason_name(why));
    }
}

/* ---- topology ---------------------------------------------------------- */

static const bn_topology_t *s_topology(s_node_t *nd, uint32_t epoch)
{
    uint32_t key = nd->opt.time_varying ? epoch : BN_TOPOLOGY_STATIC;
    int victim = -1;
    for (int i = 0; i < S_TOPO_CACHE; i++) {
        if (nd->topo[i].valid && nd->topo[i].epoch == key)
            return &nd->topo[i].g;
        if (!nd->topo[i].valid && victim < 0)
            victim = i;
    }
    if (victim < 0) {
        /* Evict the oldest epoch that is not the current one. */
        uint32_t oldest = UINT32_MAX;
        for (int i = 0; i < S_TOPO_CACHE; i++)
            if (&nd->topo[i].g != nd->g && nd->topo[i].epoch < oldest) {
                oldest = nd->topo[i].epoch;
                victim = i;
            }
        bn_topology_free(&nd->topo[victim].g);
        nd->topo[victim].valid = false;
    }
    char err[256];
    int rc;
    if (nd->opt.topology_file[0])
        rc = bn_topology_load(&nd->topo[victim].g, nd->opt.topology_file, nd->n, err, sizeof err);
    else
        rc = bn_topology_er(&nd->topo[victim].g, nd->n, nd->opt.p, nd->opt.min_degree,
                            nd->opt.seed, key, err, sizeof err);
    if (rc != BN_OK) {
        BN_ERROR("topology for epoch %u: %s", epoch, err);
        return NULL;
    }
    nd->topo[victim].epoch = key;
    nd->topo[victim].valid = true;
    return &nd->topo[victim].g;
}

/* ---- slots ------------------------------------------------------------- */

static s_slot_t *s_slot(s_slot_t *ring, const s_node_t *nd, uint64_t round, uint32_t peer)
{
    return &ring[(round % nd->W) * nd->n + peer];
}

static void s_slot_clear(s_slot_t *s)
{
    if (s->full) {
        zmq_msg_close(&s->msg);
        s->full = false;
    }
}

static const float *s_slot_data(s_slot_t *s)
{
    return (const float *) zmq_msg_data(&s->msg);
}

/* Moves a validated payload frame into a slot, realigning if libzmq handed us
 * data at an address that is not 4-byte aligned. */
static void s_slot_fill(s_slot_t *s, uint64_t round, zmq_msg_t *payload)
{
    zmq_msg_init(&s->msg);
    if (((uintptr_t) zmq_msg_data(payload) & 3u) == 0) {
        zmq_msg_move(&s->msg, payload);
    } else {
        zmq_msg_init_size(&s->msg, zmq_msg_size(payload));
        memcpy(zmq_msg_data(&s->msg), zmq_msg_data(payload), zmq_msg_size(payload));
    }
    s->round = round;
    s->full = true;
}

/* ---- receive path ------------------------------------------------------ */

/* Lowest-id attacker adjacent to honest node h: it relays h's model to the
 * attackers that do not hear h themselves (omniscient mode). */
static uint32_t s_relay_of(const s_node_t *nd, const bn_topology_t *g, uint32_t h)
{
    uint32_t deg;
    const uint32_t *nb = bn_topology_neighbors(g, h, &deg);
    for (uint32_t i = 0; i < deg; i++)
        if (nd->is_byz[nb[i]])
            return nb[i];
    return UINT32_MAX;
}

static void s_handle(s_node_t *nd, bn_rx_t *rx)
{
    bn_wire_header_t h;
    if (rx->truncated || rx->n != 2) {
        s_drop(nd, UINT32_MAX, BN_DROP_FRAMES);
        return;
    }
    bn_drop_reason_t why = bn_wire_decode(zmq_msg_data(&rx->frames[0]), zmq_msg_size(&rx->frames[0]), &h);
    if (why != BN_DROP_NONE) {
        s_drop(nd, rx->auth_id, why);
        return;
    }
    bn_wire_expect_t ex = { nd->swarm.swarm_id, nd->n, nd->id, (uint32_t) nd->dim };
    why = bn_wire_validate(&ex, &h, zmq_msg_data(&rx->frames[1]), zmq_msg_size(&rx->frames[1]), true);
    if (why != BN_DROP_NONE) {
        s_drop(nd, why == BN_DROP_SENDER ? UINT32_MAX : h.sender, why);
        return;
    }
    uint32_t from = h.sender;
    if (rx->auth_id != BN_AUTH_NONE && rx->auth_id != from) {
        s_drop(nd, rx->auth_id, BN_DROP_AUTH);
        return;
    }
    if (nd->swarm.curve && rx->auth_id == BN_AUTH_NONE) {
        s_drop(nd, from, BN_DROP_AUTH);
        return;
    }
    bool collude = h.kind == BN_MSG_COLLUDE;
    if (h.kind != BN_MSG_MODEL && !(collude && !nd->honest && nd->is_byz[from])) {
        s_drop(nd, from, BN_DROP_KIND);
        return;
    }
    if (h.epoch != h.round / nd->R) {
        s_drop(nd, from, BN_DROP_HEADER);
        return;
    }
    if (h.round < nd->round) {
        BN_DEBUG("stale: round %llu from node %u, we are at %llu", (unsigned long long) h.round, from,
             (unsigned long long) nd->round);
        s_drop(nd, from, BN_DROP_STALE);
        return;
    }
    /* A node restarted from a checkpoint is behind: its neighbours' messages
     * are too far ahead.  While it is rejoining, such a message that passes
     * every other check still counts as 'future', but also tells it where
     * the swarm is (the lowest such round wins; see s_rejoin_skip). */
    bool far = h.round >= nd->round + nd->W;
    if (far && (!nd->rejoining || collude || h.epoch >= nd->opt.epochs)) {
        s_drop(nd, from, BN_DROP_FUTURE);
        return;
    }
    const bn_topology_t *g = s_topology(nd, h.epoch);
    if (!g || g->fingerprint != h.topology) {
        s_drop(nd, from, BN_DROP_TOPOLOGY);
        return;
    }
    uint32_t key = from;
    if (collude) {
        /* A relay is only believed for an honest origin it can actually hear. */
        if (h.origin >= nd->n || nd->is_byz[h.origin] || !bn_topology_has_edge(g, from, h.origin)) {
            s_drop(nd, from, BN_DROP_KIND);
            return;
        }
        key = h.origin;
    } else if (!bn_topology_has_edge(g, nd->id, from)) {
        s_drop(nd, from, BN_DROP_NOT_NEIGHBOR);
        return;
    }
    if (far) {
        if (h.round < nd->catch_up)
            nd->catch_up = h.round;
        s_drop(nd, from, BN_DROP_FUTURE);
        return;
    }
    s_slot_t *s = s_slot(collude ? nd->cslots : nd->slots, nd, h.round, key);
    if (s->full && s->round == h.round) {
        s_drop(nd, from, BN_DROP_DUPLICATE);
        return;
    }
    s_slot_clear(s);
    s_slot_fill(s, h.round, &rx->frames[1]);
    nd->misses[from] = 0;
}

/* Which peers does this round wait for?  need[j] = 1 for each. */
typedef bool (*s_done_fn)(s_node_t *nd, uint64_t round);

static bool s_have(s_node_t *nd, s_slot_t *ring, uint64_t round, uint32_t peer)
{
    s_slot_t *s = s_slot(ring, nd, round, peer);
    return s->full && s->round == round;
}

/* Honest: every neighbour that is not suspected dead has arrived. */
static bool s_done_honest(s_node_t *nd, uint64_t round)
{
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if (!s_have(nd, nd->slots, round, j) && nd->misses[j] < 2)
            return false;
    }
    return true;
}

/* Attacker, first phase: every honest neighbour has arrived. */
static bool s_done_attacker_local(s_node_t *nd, uint64_t round)
{
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if (!nd->is_byz[j] && !s_have(nd, nd->slots, round, j) && nd->misses[j] < 2)
            return false;
    }
    return true;
}

/* Attacker, second phase: every relay it should get has arrived. */
static bool s_done_attacker_relays(s_node_t *nd, uint64_t round)
{
    for (uint32_t h = 0; h < nd->n; h++) {
        if (nd->is_byz[h] || h == nd->id || bn_topology_has_edge(nd->g, nd->id, h))
            continue;
        uint32_t relay = s_relay_of(nd, nd->g, h);
        if (relay == UINT32_MAX || relay == nd->id || nd->misses[relay] >= 2)
            continue;
        if (!s_have(nd, nd->cslots, round, h))
            return false;
    }
    return true;
}

/* Receives until done(round) or the deadline; returns true if done. */
static bool s_collect(s_node_t *nd, uint64_t round, double deadline, s_done_fn done)
{
    for (;;) {
        bn_fault_flush(nd->fault, nd->tr);
        if (done(nd, round))
            return true;
        if (nd->stop && *nd->stop)
            return false;
        if (nd->catch_up != UINT64_MAX)
            return false;       /* rejoining: the neighbours are far ahead */
        double now = bn_now();
        if (now >= deadline)
            return false;
        int ms = (int) ((deadline - now) * 1000.0) + 1;
        int due = bn_fault_next_due_ms(nd->fault);
        if (due >= 0 && due < ms)
            ms = due;
        if (ms > 200 && nd->stop)
            ms = 200;     /* so that a stop request is seen promptly */
        bn_rx_t rx;
        int rc = bn_transport_recv(nd->tr, ms, &rx);
        if (rc == BN_OK) {
            s_handle(nd, &rx);
            bn_rx_close(&rx);
        }
    }
}

/* ---- send path --------------------------------------------------------- */

static void s_header(const s_node_t *nd, bn_wire_header_t *h, uint32_t kind, uint32_t origin)
{
    memset(h, 0, sizeof *h);
    h->version = BN_WIRE_VERSION;
    h->kind = kind;
    h->swarm_id = nd->swarm.swarm_id;
    h->sender = nd->id;
    h->epoch = nd->epoch;
    h->round = nd->round;
    h->topology = nd->g ? nd->g->fingerprint : 0;
    h->dtype = BN_DTYPE_F32;
    h->dim = (uint32_t) nd->dim;
    h->origin = origin;
}

/* Sends vec as this round's MODEL to every neighbour for which to[j] (or all
 * neighbours if to_honest_only is false). */
static void s_send_model(s_node_t *nd, const float *vec, bool to_honest_only)
{
    double t0 = bn_now();
    bn_wire_header_t h;
    s_header(nd, &h, BN_MSG_MODEL, nd->id);
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, nd->dim * sizeof(float));
    memcpy(zmq_msg_data(&payload), vec, nd->dim * sizeof(float));
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if (to_honest_only && nd->is_byz[j])
            continue;
        bn_fault_send(nd->fault, nd->tr, j, hb, hlen, &payload);
    }
    zmq_msg_close(&payload);
    nd->rep.t_encode += bn_now() - t0;
}

/* Sends vec as this round's MODEL to neighbour j only (per-victim attacks). */
static void s_send_model_to(s_node_t *nd, const float *vec, uint32_t j)
{
    double t0 = bn_now();
    bn_wire_header_t h;
    s_header(nd, &h, BN_MSG_MODEL, nd->id);
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, nd->dim * sizeof(float));
    memcpy(zmq_msg_data(&payload), vec, nd->dim * sizeof(float));
    bn_fault_send(nd->fault, nd->tr, j, hb, hlen, &payload);
    zmq_msg_close(&payload);
    nd->rep.t_encode += bn_now() - t0;
}

/* ---- learning ---------------------------------------------------------- */

static void s_next_batch(s_node_t *nd, uint32_t *idx, uint32_t batch)
{
    for (uint32_t b = 0; b < batch; b++) {
        if (nd->order_pos >= nd->train.n) {
            bn_rng_shuffle_u32(&nd->batch_rng, nd->order, nd->train.n);
            nd->order_pos = 0;
        }
        idx[b] = nd->order[nd->order_pos++];
    }
}

static void s_local_steps(s_node_t *nd)
{
    double t0 = bn_now();
    uint32_t idx[4096];
    uint32_t batch = BN_MIN(nd->opt.batch, nd->train.n);
    for (uint32_t s = 0; s < nd->opt.local_steps; s++) {
        s_next_batch(nd, idx, batch);
        bn_dataset_batch(&nd->train, idx, batch, nd->bx, nd->by);
        if (nd->opt.attack.kind == BN_ATTACK_LABEL_FLIP)
            for (uint32_t b = 0; b < batch; b++)
                nd->by[b] = (uint8_t) (9 - nd->by[b]);
        float loss = bn_model_loss_grad(nd->model, nd->x, nd->bx, nd->by, batch, nd->grad, NULL);
        bn_sgd_step(&nd->sgd, nd->x, nd->grad);
        if (isfinite(loss)) {
            nd->train_loss_sum += loss;
            nd->train_steps++;
        }
    }
    nd->rep.t_compute += bn_now() - t0;
}

/* Oracle for mozi / bygars: loss and gradient on one fixed local batch. */
typedef struct { s_node_t *nd; uint32_t idx[512]; uint32_t n; bool ready; } s_oracle_ctx_t;

static void s_oracle_prepare(s_oracle_ctx_t *o)
{
    if (o->ready)
        return;
    s_node_t *nd = o->nd;
    o->n = BN_MIN(BN_MIN(nd->opt.batch, nd->train.n), 512u);
    for (uint32_t i = 0; i < o->n; i++)
        o->idx[i] = (uint32_t) ((uint64_t) i * nd->train.n / o->n);
    o->ready = true;
}

static float s_oracle_loss(void *ctx, const float *params)
{
    s_oracle_ctx_t *o = ctx;
    s_oracle_prepare(o);
    bn_dataset_batch(&o->nd->train, o->idx, o->n, o->nd->bx, o->nd->by);
    return bn_model_loss(o->nd->model, params, o->nd->bx, o->nd->by, o->n, NULL);
}

static void s_oracle_grad(void *ctx, const float *params, float *g)
{
    s_oracle_ctx_t *o = ctx;
    s_oracle_prepare(o);
    bn_dataset_batch(&o->nd->train, o->idx, o->n, o->nd->bx, o->nd->by);
    bn_model_loss_grad(o->nd->model, params, o->nd->bx, o->nd->by, o->n, g, NULL);
}

/* ---- one round ----------------------------------------------------------- */

static void s_account_missing(s_node_t *nd, uint64_t round, bool completed)
{
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if (!nd->honest && nd->is_byz[j])
            continue;
        if (!s_have(nd, nd->slots, round, j)) {
            nd->rep.missing++;
            BN_DEBUG("round %llu: no model from node %u (misses %u)", (unsigned long long) round, j,
                     nd->misses[j]);
            if (nd->misses[j] < 255)
                nd->misses[j]++;
        }
    }
    if (!completed)
        nd->rep.rounds_timed_out++;
}

static double s_deadline(const s_node_t *nd, double t0)
{
    double timeout = nd->opt.round_timeout_ms / 1000.0;
    /* The first round also waits for peers that are still starting. */
    if (nd->round == 0 || nd->rep.resumed)
        timeout *= 3;
    return t0 + timeout;
}

static void s_round_honest(s_node_t *nd, s_oracle_ctx_t *oc)
{
    memcpy(nd->x_prev, nd->x, nd->dim * sizeof(float));
    s_local_steps(nd);
    bool talk = nd->opt.rule.kind != BN_RULE_STANDALONE && nd->deg > 0;
    uint32_t k = 0;
    if (talk) {
        s_send_model(nd, nd->x, false);
        double t0 = bn_now();
        bool done = s_collect(nd, nd->round, s_deadline(nd, t0), s_done_honest);
        nd->rep.t_wait += bn_now() - t0;
        s_account_missing(nd, nd->round, done);
        for (uint32_t i = 0; i < nd->deg; i++) {
            uint32_t j = nd->nbr[i];
            s_slot_t *s = s_slot(nd->slots, nd, nd->round, j);
            if (s->full && s->round == nd->round) {
                nd->nb_ptr[k] = s_slot_data(s);
                nd->nb_id[k] = j;
                k++;
            }
        }
    }
    double t0 = bn_now();
    bn_oracle_t oracle = { oc, s_oracle_loss, s_oracle_grad };
    bn_agg_input_t in = { nd->dim, nd->x_prev, nd->x, k, nd->nb_ptr, nd->nb_id, &oracle };
    if (bn_rule_aggregate(nd->rule, &in, nd->x_out, nd->round_w) == BN_OK) {
        float *tmp = nd->x;
        nd->x = nd->x_out;
        nd->x_out = tmp;
        for (uint32_t i = 0; i < k; i++)
            nd->weight_acc[nd->nb_id[i]] += nd->round_w[i];
        nd->weight_acc[nd->id] += nd->round_w[k];
    }
    if (k > 0 && nd->rejoining) {
        nd->rejoining = false;
        BN_INFO("rejoined the swarm in round %llu", (unsigned long long) nd->round);
    }
    nd->rep.t_aggregate += bn_now() - t0;
}

static void s_round_attacker(s_node_t *nd)
{
    memcpy(nd->x_prev, nd->x, nd->dim * sizeof(float));
    bn_attack_kind_t kind = nd->opt.attack.kind;
    if (bn_attack_trains(kind))
        s_local_steps(nd);
    /* In a stand-alone swarm nobody talks, so there is nobody to attack and
     * nothing to listen to. */
    if (nd->opt.rule.kind == BN_RULE_STANDALONE)
        return;
    double t0 = bn_now();
    /* Listen to the honest neighbours first: the attack uses their models. */
    bool done = s_collect(nd, nd->round, s_deadline(nd, t0), s_done_attacker_local);
    s_account_missing(nd, nd->round, done);
    if (nd->opt.omniscient) {
        bn_wire_header_t h;
        uint8_t hb[BN_WIRE_HEADER_MAX];
        size_t hlen;
        for (uint32_t i = 0; i < nd->deg; i++) {
            uint32_t hnode = nd->nbr[i];
            if (nd->is_byz[hnode] || !s_have(nd, nd->slots, nd->round, hnode)
                || s_relay_of(nd, nd->g, hnode) != nd->id)
                continue;
            s_header(nd, &h, BN_MSG_COLLUDE, hnode);
            bn_wire_encode(&h, hb, sizeof hb, &hlen);
            for (uint32_t a = 0; a < nd->n; a++)
                if (a != nd->id && nd->is_byz[a] && !bn_topology_has_edge(nd->g, a, hnode))
                    bn_fault_send(nd->fault, nd->tr, a, hb, hlen,
                                  &s_slot(nd->slots, nd, nd->round, hnode)->msg);
        }
        s_collect(nd, nd->round, s_deadline(nd, t0), s_done_attacker_relays);
    }
    nd->rep.t_wait += bn_now() - t0;

    uint32_t k = 0;
    for (uint32_t j = 0; j < nd->n; j++) {
        if (nd->is_byz[j] || j == nd->id)
            continue;
        if (s_have(nd, nd->slots, nd->round, j))
            nd->nb_ptr[k] = s_slot_data(s_slot(nd->slots, nd, nd->round, j));
        else if (nd->opt.omniscient && s_have(nd, nd->cslots, nd->round, j))
            nd->nb_ptr[k] = s_slot_data(s_slot(nd->cslots, nd, nd->round, j));
        else
            continue;
        nd->nb_id[k++] = j;
    }
    t0 = bn_now();
    bn_attack_input_t in = { nd->dim, k, nd->nb_ptr, nd->nb_id, nd->x_prev, nd->x, &nd->attack_rng,
                             UINT32_MAX, NULL, nd->g };
    if (kind == BN_ATTACK_CRASH) {
        /* sends nothing */
    } else if (bn_attack_per_victim(kind)) {
        for (uint32_t i = 0; i < nd->deg; i++) {
            uint32_t j = nd->nbr[i];
            if (nd->is_byz[j])
                continue;
            in.victim = j;
            in.victim_x = s_have(nd, nd->slots, nd->round, j)
                              ? s_slot_data(s_slot(nd->slots, nd, nd->round, j)) : NULL;
            double tc = bn_now();
            (void) bn_attack_craft(&nd->opt.attack, &in, nd->craft);
            nd->rep.t_aggregate += bn_now() - tc;
            s_send_model_to(nd, nd->craft, j);
        }
    } else {
        (void) bn_attack_craft(&nd->opt.attack, &in, nd->craft);
        nd->rep.t_aggregate += bn_now() - t0;
        s_send_model(nd, nd->craft, true);
    }
    /* The attacker's own model follows the honest models it knows, so that
     * its next update (sign-flip, label-flip) starts from a plausible point. */
    if (k > 0) {
        for (size_t d = 0; d < nd->dim; d++) {
            float s = nd->x[d];
            for (uint32_t i = 0; i < k; i++)
                s += nd->nb_ptr[i][d];
            nd->x[d] = s / (float) (k + 1);
        }
    }
}

/* ---- epoch bookkeeping ------------------------------------------------- */

static void s_epoch_begin(s_node_t *nd)
{
    nd->g = s_topology(nd, nd->epoch);
    nd->nbr = nd->g ? bn_topology_neighbors(nd->g, nd->id, &nd->deg) : NULL;
    if (!nd->g)
        nd->deg = 0;
    float *w = nd->rep.weight;
    bool resumed = nd->rep.resumed;
    memset(&nd->rep, 0, sizeof nd->rep);
    nd->rep.weight = w;
    nd->rep.resumed = resumed;
    memset(nd->weight_acc, 0, nd->n * sizeof(float));
    nd->train_loss_sum = 0;
    nd->train_steps = 0;
    nd->tr_at_epoch = *bn_transport_stats(nd->tr);
    nd->fault_at_epoch = *bn_fault_stats(nd->fault);
    nd->rep.t_epoch = bn_now();
    if (nd->epoch == 0 || nd->opt.time_varying || nd->opt.verbose >= 2)
        BN_INFO("epoch %u: %u neighbours, graph %016llx", nd->epoch + 1, nd->deg,
                (unsigned long long) (nd->g ? nd->g->fingerprint : 0));
}


/* The whole test set, streamed from the data files in chunks of 1,000 images
 * (a node keeps only its evaluation subset in memory): accuracy and loss
 * weighted by chunk size, as one bn_model_evaluate over all would give. */
typedef struct { s_node_t *nd; double correct, loss; uint32_t n; } s_eval_acc_t;

static void s_eval_chunk(const bn_dataset_t *view, void *ctx)
{
    s_eval_acc_t *a = ctx;
    double acc = NAN, loss = NAN;
    bn_model_evaluate(a->nd->model, a->nd->x, view, NULL, view->n, &acc, &loss);
    a->correct += acc * view->n;
    a->loss += loss * view->n;
    a->n += view->n;
}

static void s_evaluate_all(s_node_t *nd, bn_report_t *r)
{
    s_eval_acc_t a = { nd, 0, 0, 0 };
    char err[256];
    if (bn_dataset_scan_dir(nd->opt.data_dir, false, 1000, s_eval_chunk, &a, err, sizeof err) != BN_OK
        || a.n == 0) {
        BN_WARN("final evaluation: %s", err);
        return;
    }
    r->accuracy = a.correct / a.n;
    r->test_loss = a.loss / a.n;
    r->eval_images = a.n;
}

static void s_epoch_end(s_node_t *nd)
{
    bn_report_t *r = &nd->rep;
    bool last = nd->epoch + 1 == nd->opt.epochs;
    r->node = nd->id;
    r->epoch = nd->epoch;
    r->n_nodes = nd->n;
    r->honest = nd->honest;
    r->final = last;
    snprintf(r->attack, sizeof r->attack, "%s", bn_attack_name(nd->opt.attack.kind));
    r->accuracy = NAN;
    r->test_loss = NAN;
    r->train_loss = nd->train_steps ? nd->train_loss_sum / nd->train_steps : NAN;
    if (nd->honest && nd->test.n && (last || (nd->epoch + 1) % nd->opt.eval_every == 0)) {
        double t0 = bn_now();
        if (last && nd->eval_partial)
            s_evaluate_all(nd, r);
        else {
            bn_model_evaluate(nd->model, nd->x, &nd->test, NULL, nd->test.n,
                              &r->accuracy, &r->test_loss);
            r->eval_images = nd->test.n;
        }
        r->t_eval = bn_now() - t0;
    }
    const bn_transport_stats_t *ts = bn_transport_stats(nd->tr);
    r->bytes_sent = ts->bytes_sent - nd->tr_at_epoch.bytes_sent;
    r->bytes_received = ts->bytes_received - nd->tr_at_epoch.bytes_received;
    r->msgs_sent = ts->msgs_sent - nd->tr_at_epoch.msgs_sent;
    r->msgs_received = ts->msgs_received - nd->tr_at_epoch.msgs_received;
    r->send_dropped = ts->send_dropped - nd->tr_at_epoch.send_dropped;
    const bn_fault_stats_t *fs = bn_fault_stats(nd->fault);
    r->fault_dropped = fs->dropped - nd->fault_at_epoch.dropped;
    r->fault_delayed = fs->delayed - nd->fault_at_epoch.delayed;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        r->max_rss_kb = (uint64_t) ru.ru_maxrss;
    r->rule_nonfinite = nd->rule ? bn_rule_stats(nd->rule)->nonfinite : 0;
    r->topology_fp = nd->g ? nd->g->fingerprint : 0;
    r->config_fp = bn_options_fingerprint(&nd->opt);
    r->degree = nd->deg;
    r->rounds = nd->R;
    r->t_epoch = bn_now() - r->t_epoch;
    for (uint32_t j = 0; j < nd->n; j++)
        r->weight[j] = nd->weight_acc[j] / (float) nd->R;

    if (nd->jsonl) {
        bn_report_to_json(r, nd->jsonl);
        fputc('\n', nd->jsonl);
        fflush(nd->jsonl);
    }
    if (nd->swarm.monitor.endpoint[0]) {
        bn_wire_header_t h;
        s_header(nd, &h, BN_MSG_REPORT, nd->id);
        uint8_t hb[BN_WIRE_HEADER_MAX];
        size_t hlen;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        bn_report_pack(r, &pk);
        zmq_msg_t payload;
        if (nd->honest) {
            h.dim = (uint32_t) nd->dim;
            zmq_msg_init_size(&payload, nd->dim * sizeof(float));
            memcpy(zmq_msg_data(&payload), nd->x, nd->dim * sizeof(float));
        } else {
            h.dim = 0;
            zmq_msg_init(&payload);
        }
        bn_wire_encode(&h, hb, sizeof hb, &hlen);
        if (bn_transport_send(nd->tr, BN_PEER_MONITOR, hb, hlen, sb.data, sb.size, &payload) != BN_OK)
            BN_WARN("epoch %u: the report to the monitor was dropped", nd->epoch + 1);
        zmq_msg_close(&payload);
        msgpack_sbuffer_destroy(&sb);
    }
    if (nd->honest && !isnan(r->accuracy))
        BN_INFO("epoch %u: accuracy %.4f, train loss %.4f, %.1f s (compute %.1f, wait %.1f, aggregate %.2f)",
                nd->epoch + 1, r->accuracy, r->train_loss, r->t_epoch, r->t_compute, r->t_wait,
                r->t_aggregate);
    /* After the last epoch too: that checkpoint says "finished" to a rerun. */
    if (nd->opt.out_dir[0] && nd->opt.checkpoint_every
        && ((nd->epoch + 1) % nd->opt.checkpoint_every == 0 || last)) {
        bn_checkpoint_t ck = { nd->epoch + 1, nd->round, nd->dim, nd->x, nd->sgd.velocity,
                               nd->sgd.started, nd->batch_rng, nd->attack_rng, nd->order,
                               nd->train.n, nd->order_pos, bn_options_fingerprint(&nd->opt) };
        char err[256];
        if (bn_checkpoint_save(nd->opt.out_dir, nd->id, &ck, err, sizeof err) != BN_OK)
            BN_WARN("checkpoint: %s", err);
    }
}

/* ---- set-up and tear-down ---------------------------------------------- */

static int s_load_data(s_node_t *nd, char *err, size_t errlen)
{
    const bn_options_t *o = &nd->opt;
    int rc;
    if (o->train_images[0]) {
        rc = bn_dataset_load(&nd->train, o->train_images, o->train_labels, NULL, 0, err, errlen);
        if (rc != BN_OK)
            return rc;
        nd->R = (nd->train.n + o->batch * o->local_steps - 1) / (o->batch * o->local_steps);
    } else {
        char path[BN_PATH_MAX + 64];
        if (bn_dataset_file(path, sizeof path, o->data_dir, true, true) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "%s: data directory path too long", o->data_dir);
        uint8_t *labels = NULL;
        uint32_t total = 0, count = 0, *idx = NULL;
        rc = bn_idx_read_labels(path, &labels, &total, err, errlen);
        if (rc != BN_OK)
            return rc;
        bn_partition_opts_t po = { o->partition, o->seed, nd->n, o->shards_per_node, o->alpha };
        rc = bn_partition_node(&po, labels, total, nd->id, &idx, &count, err, errlen);
        free(labels);
        if (rc != BN_OK)
            return rc;
        if (count == 0) {
            free(idx);
            return bn_fail(err, errlen, BN_EARG, "node %u got no training images (partition %s)",
                           nd->id, bn_partition_name(o->partition));
        }
        rc = bn_dataset_load_dir(&nd->train, o->data_dir, true, idx, count, err, errlen);
        free(idx);
        if (rc != BN_OK)
            return rc;
        /* Same on every node: the mean shard size, not this node's. */
        uint32_t share = (total + nd->n - 1) / nd->n;
        nd->R = (share + o->batch * o->local_steps - 1) / (o->batch * o->local_steps);
    }
    if (nd->R == 0)
        nd->R = 1;
    /* Only the evaluation subset stays in memory; the last epoch streams the
     * whole test set (s_evaluate_all). */
    if (nd->honest) {
        rc = bn_dataset_load_eval(&nd->test, o->data_dir, o->eval_subset, o->seed,
                                  &nd->eval_partial, err, errlen);
        if (rc != BN_OK)
            return rc;
    }
    nd->order = malloc(nd->train.n * sizeof *nd->order);
    if (!nd->order)
        return BN_ENOMEM;
    for (uint32_t i = 0; i < nd->train.n; i++)
        nd->order[i] = i;
    bn_rng_shuffle_u32(&nd->batch_rng, nd->order, nd->train.n);
    return BN_OK;
}

static void s_free(s_node_t *nd)
{
    if (nd->slots)
        for (size_t i = 0; i < (size_t) nd->W * nd->n; i++) {
            s_slot_clear(&nd->slots[i]);
            s_slot_clear(&nd->cslots[i]);
        }
    free(nd->slots);
    free(nd->cslots);
    bn_fault_destroy(&nd->fault);
    bn_transport_destroy(&nd->tr);
    bn_model_destroy(&nd->model);
    bn_rule_destroy(&nd->rule);
    bn_sgd_free(&nd->sgd);
    bn_free(nd->x);
    bn_free(nd->x_prev);
    bn_free(nd->x_out);
    bn_free(nd->grad);
    bn_free(nd->craft);
    bn_free(nd->bx);
    free(nd->by);
    free(nd->order);
    free(nd->is_byz);
    free(nd->misses);
    free(nd->logged);
    free(nd->weight_acc);
    free(nd->round_w);
    free(nd->rep.weight);
    free(nd->nb_ptr);
    free(nd->nb_id);
    for (int i = 0; i < S_TOPO_CACHE; i++)
        if (nd->topo[i].valid)
            bn_topology_free(&nd->topo[i].g);
    bn_dataset_free(&nd->train);
    bn_dataset_free(&nd->test);
    if (nd->jsonl)
        fclose(nd->jsonl);
    bn_swarm_free(&nd->swarm);
}

int bn_node_run(const bn_options_t *opt, volatile sig_atomic_t *stop)
{
    s_node_t *nd = calloc(1, sizeof *nd);
    if (!nd)
        return BN_ENOMEM;
    char err[512] = "";
    int rc;
    nd->opt = *opt;
    nd->stop = stop;
    openblas_set_num_threads((int) opt->blas_threads);

    rc = bn_swarm_load(&nd->swarm, opt->swarm_path, err, sizeof err);
    if (rc != BN_OK)
        goto fail;
    nd->n = nd->swarm.n;
    nd->id = opt->id;
    if (nd->id >= nd->n) {
        rc = bn_fail(err, sizeof err, BN_EARG, "--id %u: the swarm file has nodes 0..%u", nd->id, nd->n - 1);
        goto fail;
    }
    nd->honest = opt->attack.kind == BN_ATTACK_NONE;
    nd->is_byz = calloc(nd->n, sizeof *nd->is_byz);
    nd->misses = calloc(nd->n, 1);
    nd->logged = calloc(nd->n + 1, sizeof *nd->logged);
    nd->weight_acc = calloc(nd->n, sizeof(float));
    nd->round_w = calloc(nd->n + 1, sizeof(float));
    nd->rep.weight = calloc(nd->n, sizeof(float));
    nd->nb_ptr = calloc(nd->n, sizeof *nd->nb_ptr);
    nd->nb_id = calloc(nd->n, sizeof *nd->nb_id);
    nd->W = opt->future_rounds;
    nd->catch_up = UINT64_MAX;
    nd->slots = calloc((size_t) nd->W * nd->n, sizeof *nd->slots);
    nd->cslots = calloc((size_t) nd->W * nd->n, sizeof *nd->cslots);
    if (!nd->is_byz || !nd->misses || !nd->logged || !nd->weight_acc || !nd->round_w
        || !nd->rep.weight || !nd->nb_ptr || !nd->nb_id || !nd->slots || !nd->cslots) {
        rc = BN_ENOMEM;
        goto fail;
    }
    if (!nd->honest) {
        /* Attackers collude: they know who their fellows are. */
        if (bn_roles_byzantine(opt->seed, nd->n, opt->byzantine, nd->is_byz) != BN_OK) {
            rc = BN_ENOMEM;
            goto fail;
        }
        nd->is_byz[nd->id] = true;
    }
    bn_rng_seed(&nd->batch_rng, opt->seed, BN_STREAM_BATCH + ((uint64_t) nd->id << 8));
    bn_rng_seed(&nd->attack_rng, opt->seed, BN_STREAM_ATTACK + ((uint64_t) nd->id << 8));

    rc = s_load_data(nd, err, sizeof err);
    if (rc != BN_OK)
        goto fail;

    nd->model = bn_model_new(opt->model, BN_MAX(opt->batch, 512u));
    if (!nd->model) {
        rc = bn_fail(err, sizeof err, BN_ENOMEM, "cannot allocate the model");
        goto fail;
    }
    nd->dim = bn_model_dim(nd->model);
    nd->x = bn_alloc_floats(nd->dim);
    nd->x_prev = bn_alloc_floats(nd->dim);
    nd->x_out = bn_alloc_floats(nd->dim);
    nd->grad = bn_alloc_floats(nd->dim);
    nd->craft = bn_alloc_floats(nd->dim);
    nd->bx = bn_alloc_floats((size_t) BN_MAX(opt->batch, 512u) * 784);
    nd->by = calloc(BN_MAX(opt->batch, 512u), 1);
    if (!nd->x || !nd->x_prev || !nd->x_out || !nd->grad || !nd->craft || !nd->bx || !nd->by) {
        rc = BN_ENOMEM;
        goto fail;
    }
    bn_model_init(nd->model, nd->x, opt->seed);
    if (bn_sgd_init(&nd->sgd, nd->dim, opt->lr, opt->weight_decay, opt->momentum) != BN_OK) {
        rc = BN_ENOMEM;
        goto fail;
    }
    nd->rule = bn_rule_new(&opt->rule, nd->dim, nd->n);
    if (!nd->rule) {
        rc = bn_fail(err, sizeof err, BN_EARG, "cannot create rule %s", bn_rule_name(opt->rule.kind));
        goto fail;
    }

    char key[BN_KEY_Z85_LEN + 1];
    bn_transport_opts_t to;
    bn_transport_opts_default(&to);
    to.max_msg_size = (int64_t) nd->dim * 4 + 4096;
    /* An honest node has at most future_rounds messages in flight per peer;
     * a colluding attacker relays up to one model per honest node in a burst. */
    to.sndhwm = (int) BN_MAX(8u, 2 * nd->W);
    to.rcvhwm = to.sndhwm;
    if (!nd->honest && opt->omniscient)
        to.sndhwm = to.rcvhwm = (int) BN_MAX((uint32_t) to.sndhwm, 2 * nd->n);
    if (opt->key_path[0]) {
        rc = bn_key_read(opt->key_path, key, err, sizeof err);
        if (rc != BN_OK)
            goto fail;
        to.secret_key = key;
    }
    nd->tr = bn_transport_new(&nd->swarm, nd->id, NULL, &to, err, sizeof err);
    if (!nd->tr) {
        rc = BN_ENET;
        goto fail;
    }
    nd->fault = bn_fault_new(opt->fault_drop, opt->fault_delay_ms, opt->seed, nd->id);
    if (!nd->fault) {
        rc = BN_ENOMEM;
        goto fail;
    }

    uint32_t first_epoch = 0;
    if (opt->out_dir[0]) {
        mkdir(opt->out_dir, 0755);
        bn_checkpoint_t ck = { 0, 0, nd->dim, nd->x, nd->sgd.velocity, false, nd->batch_rng,
                               nd->attack_rng, nd->order, nd->train.n, 0, 0 };
        char path[BN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/node-%u.jsonl", opt->out_dir, nd->id);
        int crc = bn_checkpoint_load(opt->out_dir, nd->id, bn_options_fingerprint(opt), opt->epochs,
                                     &ck, err, sizeof err);
        if ((crc == BN_OK && ck.epoch >= opt->epochs)
            || (crc == BN_EIO && bn_checkpoint_log_last(path) >= opt->epochs)) {
            BN_INFO("already finished (%s says epoch %u of %u): nothing to do",
                    crc == BN_OK ? "the checkpoint" : path, opt->epochs, opt->epochs);
            rc = BN_OK;
            goto done;
        }
        if (crc == BN_OK && bn_checkpoint_trim_log(path, ck.epoch, err, sizeof err) != BN_OK) {
            rc = BN_EIO;
            goto fail;
        }
        if (crc == BN_OK) {
            first_epoch = ck.epoch;
            nd->round = ck.round;
            nd->sgd.started = ck.sgd_started;
            nd->batch_rng = ck.batch_rng;
            nd->attack_rng = ck.attack_rng;
            nd->order_pos = ck.order_pos;
            nd->rep.resumed = true;
            nd->rejoining = true;
            BN_INFO("resumed from checkpoint: epoch %u, round %llu", first_epoch + 1,
                    (unsigned long long) nd->round);
        } else if (crc != BN_EIO) {
            BN_WARN("ignoring checkpoint (starting afresh): %s", err);
        }
        nd->jsonl = fopen(path, first_epoch ? "a" : "w");
    }
    err[0] = 0;
    BN_INFO("%s node %u of %u: %u training images, d = %zu, %u rounds per epoch, rule %s",
            nd->honest ? "honest" : bn_attack_name(opt->attack.kind), nd->id, nd->n, nd->train.n,
            nd->dim, nd->R, bn_rule_name(opt->rule.kind));

    s_oracle_ctx_t oc = { .nd = nd };
    bool diverged = false;
    for (nd->epoch = first_epoch; nd->epoch < opt->epochs; nd->epoch++) {
        s_epoch_begin(nd);
        if (!nd->g && nd->n > 1) {
            rc = BN_EARG;
            goto fail;
        }
        for (uint32_t r = 0; r < nd->R; r++, nd->round++) {
            if (stop && *stop) {
                BN_WARN("stopping at epoch %u round %u on request", nd->epoch + 1, r);
                rc = BN_OK;
                goto done;
            }
            if (nd->catch_up != UINT64_MAX) {
                /* Rejoining: skip (no training, no messages) to one round past
                 * where the neighbours were seen, so that they hear us again. */
                if (nd->round <= nd->catch_up) {
                    if (r == 0 || nd->round + 1 == nd->catch_up)
                        BN_DEBUG("rejoining: skipping round %llu", (unsigned long long) nd->round);
                    continue;
                }
                BN_INFO("rejoining: skipped ahead to round %llu", (unsigned long long) nd->round);
                nd->catch_up = UINT64_MAX;
            }
            if (nd->honest)
                s_round_honest(nd, &oc);
            else
                s_round_attacker(nd);
            /* Release this round's slots; later rounds stay. */
            for (uint32_t j = 0; j < nd->n; j++) {
                s_slot_t *s = s_slot(nd->slots, nd, nd->round, j);
                if (s->full && s->round <= nd->round)
                    s_slot_clear(s);
                s = s_slot(nd->cslots, nd, nd->round, j);
                if (s->full && s->round <= nd->round)
                    s_slot_clear(s);
            }
            if (!diverged && !bn_all_finite(nd->x, nd->dim)) {
                /* Not fatal: a broken model is a result (say, mean under attack). */
                BN_WARN("the model diverged (non-finite parameters) in round %llu",
                        (unsigned long long) nd->round);
                diverged = true;
            }
        }
        s_epoch_end(nd);
        nd->rep.resumed = false;
    }
    /* Let the last round's messages drain to slower neighbours before closing. */
    bn_fault_drain(nd->fault, nd->tr);
done:
    s_free(nd);
    free(nd);
    return rc;
fail:
    if (err[0])
        BN_ERROR("%s", err);
    else
        BN_ERROR("%s", bn_strerror(rc));
    s_free(nd);
    free(nd);
    return rc ? rc : BN_EARG;
}
