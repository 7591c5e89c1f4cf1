/*  node.c -- the node loop: Algorithm 1 of 002_9f36060eb9cf48f4.txt (gossip
 *  after local update); see node.h.
 *
 *  Epoch e has rounds e*R .. e*R + R - 1.  Round r of an honest node:
 *    1. local steps:  x_prev = x; local_steps SGD steps on x
 *    2. send:         x to every neighbour of the epoch's graph
 *    3. collect:      the neighbours' models of round r (inbox.h) until all
 *                     that are not given up are there, or the deadline;
 *                     each one goes to the rule's per-neighbour pass as it
 *                     arrives (bn_rule_observe: similarity's statistics and
 *                     weighted sum, after which the inbox frees the model)
 *    4. aggregate:    x = rule(x_prev, x, received)
 *  An attacker's round is adversary.h's.  Liveness (docs/protocol.md): when
 *  the inbox reports a quorum of neighbours far ahead, the node skips to the
 *  round it names -- no training, no messages in skipped rounds, counted in
 *  rounds_skipped -- and takes part again from there.
 *
 *  Set-up and tear-down are node_setup.h's, the per-epoch report
 *  node_report.h's, the message path node_io.c's.
 */
#include "node.h"

#include <math.h>
#include <string.h>

#include "adversary.h"
#include "node_report.h"
#include "node_setup.h"
#include "node_state.h"

/* ---- 1. local steps ---------------------------------------------------- */

static void s_next_batch(bn_node_t *nd, uint32_t *idx, uint32_t batch)
{
    for (uint32_t b = 0; b < batch; b++) {
        if (nd->order_pos >= nd->train.n) {
            bn_rng_shuffle_u32(&nd->batch_rng, nd->order, nd->train.n);
            nd->order_pos = 0;
        }
        idx[b] = nd->order[nd->order_pos++];
    }
}

void bn_node_local_steps(bn_node_t *nd)
{
    double t0 = bn_now(), c0 = bn_cpu_now();
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
    nd->rep.cpu_compute += bn_cpu_now() - c0;
}

/* Oracle for mozi / bygars / bygars++: loss and gradient on one fixed local
 * batch, bn_node_oracle_batch (the held-out auxiliary set for bygars). */
typedef struct {
    bn_node_t *nd;
    const bn_dataset_t *ds;
    uint32_t idx[512];
    uint32_t n;
    bool ready;
} s_oracle_ctx_t;

static void s_oracle_prepare(s_oracle_ctx_t *o)
{
    if (o->ready)
        return;
    o->ds = bn_node_oracle_batch(o->nd, o->idx, &o->n);
    o->ready = true;
}

static float s_oracle_loss(void *ctx, const float *params)
{
    s_oracle_ctx_t *o = ctx;
    s_oracle_prepare(o);
    bn_dataset_batch(o->ds, o->idx, o->n, o->nd->bx, o->nd->by);
    return bn_model_loss(o->nd->model, params, o->nd->bx, o->nd->by, o->n, NULL);
}

static void s_oracle_grad(void *ctx, const float *params, float *g)
{
    s_oracle_ctx_t *o = ctx;
    s_oracle_prepare(o);
    bn_dataset_batch(o->ds, o->idx, o->n, o->nd->bx, o->nd->by);
    bn_model_loss_grad(o->nd->model, params, o->nd->bx, o->nd->by, o->n, g, NULL);
}

/* ---- 3. collect -------------------------------------------------------- */

/* Every neighbour that is not given up has arrived.  Each model seen for
 * the first time goes to the rule's per-neighbour pass at once
 * (bn_rule_observe under its position in the neighbour list), while the
 * others are still awaited; bn_rule_aggregate then only finishes.  A rule
 * that streams (bn_rule_streams: similarity) has then taken all it needs,
 * so the inbox frees the payload at once: the node holds O(d) of this
 * round instead of k models. */
static bool s_done_honest(bn_node_t *nd, uint64_t round)
{
    bool done = true;
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        const float *x = bn_inbox_model(nd->inbox, round, j);
        if (x && !nd->nb_seen[i] && round == nd->round) {
            double t0 = bn_now(), c0 = bn_cpu_now();
            bn_rule_observe(nd->rule, i, x);
            nd->nb_seen[i] = 1;
            if (bn_rule_streams(nd->rule))
                bn_inbox_release(nd->inbox, round, j);
            nd->rep.t_aggregate += bn_now() - t0;
            nd->rep.cpu_aggregate += bn_cpu_now() - c0;
        }
        if (!bn_inbox_has(nd->inbox, round, j) && bn_inbox_waits_for(nd->inbox, j))
            done = false;
    }
    return done;
}

/* Steps 2 and 3: the neighbours' models of this round into nb_ptr / nb_id /
 * nb_slot (a released model: nb_ptr NULL, nb_slot its observe slot). */
static uint32_t s_exchange(bn_node_t *nd)
{
    if (nd->opt.rule.kind == BN_RULE_STANDALONE || nd->deg == 0)
        return 0;
    bn_node_send_model(nd, nd->x, false, UINT32_MAX);
    /* x_prev and x are final for the round: the streaming pass may start */
    bn_rule_begin(nd->rule, nd->x_prev, nd->x);
    memset(nd->nb_seen, 0, nd->deg);
    double t0 = bn_now(), agg0 = nd->rep.t_aggregate;
    bool done = bn_node_collect(nd, nd->round, bn_node_deadline(nd), s_done_honest);
    /* the per-neighbour passes done meanwhile count as aggregation, not waiting */
    nd->rep.t_wait += bn_now() - t0 - (nd->rep.t_aggregate - agg0);
    bn_node_close_round(nd, done || bn_inbox_catch_up(nd->inbox) != UINT64_MAX);
    uint32_t k = 0;
    for (uint32_t i = 0; i < nd->deg; i++) {
        if (!bn_inbox_has(nd->inbox, nd->round, nd->nbr[i]))
            continue;
        nd->nb_ptr[k] = bn_inbox_model(nd->inbox, nd->round, nd->nbr[i]);
        nd->nb_slot[k] = nd->nb_seen[i] ? i : UINT32_MAX;
        nd->nb_id[k++] = nd->nbr[i];
    }
    return k;
}

/* ---- 4. aggregate ------------------------------------------------------ */

static void s_aggregate(bn_node_t *nd, s_oracle_ctx_t *oc, uint32_t k)
{
    double t0 = bn_now(), c0 = bn_cpu_now();
    bn_oracle_t oracle = { oc, s_oracle_loss, s_oracle_grad };
    bn_agg_input_t in = { nd->dim, nd->x_prev, nd->x, k, nd->nb_ptr, nd->nb_id, &oracle,
                          nd->nb_slot };
    if (bn_rule_aggregate(nd->rule, &in, nd->x_out, nd->round_w) == BN_OK) {
        float *tmp = nd->x;
        nd->x = nd->x_out;
        nd->x_out = tmp;
        for (uint32_t i = 0; i < k; i++)
            nd->weight_acc[nd->nb_id[i]] += nd->round_w[i];
        nd->weight_acc[nd->id] += nd->round_w[k];
    }
    nd->rep.t_aggregate += bn_now() - t0;
    nd->rep.cpu_aggregate += bn_cpu_now() - c0;
}

static void s_round_honest(bn_node_t *nd, s_oracle_ctx_t *oc)
{
    memcpy(nd->x_prev, nd->x, nd->dim * sizeof(float));
    bn_node_local_steps(nd);
    uint32_t k = s_exchange(nd);
    s_aggregate(nd, oc, k);
    if (k > 0 && nd->rejoining) {
        nd->rejoining = false;
        BN_INFO("rejoined the swarm in round %llu", (unsigned long long) nd->round);
    }
}

/* ---- the loop ---------------------------------------------------------- */

/* Liveness: true if this round is skipped (the swarm is ahead). */
static bool s_skip(bn_node_t *nd)
{
    if (nd->skip_to > nd->round) {
        nd->rep.rounds_skipped++;
        return true;
    }
    if (nd->skip_to && nd->skip_to == nd->round) {
        nd->skip_to = 0;
        nd->rejoining = true;
        BN_INFO("caught up with the swarm: taking part again from round %llu (epoch %u)",
                (unsigned long long) nd->round, nd->epoch + 1);
    }
    bn_inbox_begin_round(nd->inbox, nd->round, nd->g);
    uint64_t target = bn_inbox_catch_up(nd->inbox);
    if (target == UINT64_MAX)
        return false;
    BN_INFO("the swarm is ahead (neighbours at round %llu and beyond): skipping rounds %llu..%llu",
            (unsigned long long) target, (unsigned long long) nd->round,
            (unsigned long long) (target - 1));
    /* From now on the inbox keeps messages of the target's window. */
    bn_inbox_jump(nd->inbox, target);
    nd->skip_to = target;
    nd->rep.rounds_skipped++;
    return true;
}

static int s_epoch_begin(bn_node_t *nd)
{
    nd->g = bn_graphs_pin(nd->graphs, nd->epoch);
    nd->nbr = nd->g ? bn_topology_neighbors(nd->g, nd->id, &nd->deg) : NULL;
    if (!nd->g)
        nd->deg = 0;
    bn_node_report_begin(nd);
    if (nd->epoch == 0 || nd->opt.time_varying || nd->opt.verbose >= 2)
        BN_INFO("epoch %u: %u neighbours, graph %016llx", nd->epoch + 1, nd->deg,
                (unsigned long long) (nd->g ? nd->g->fingerprint : 0));
    return nd->g || nd->n <= 1 ? BN_OK : BN_EARG;
}

static void s_check_finite(bn_node_t *nd)
{
    if (!nd->diverged && !bn_all_finite(nd->x, nd->dim)) {
        /* Not fatal: a broken model is a result (say, mean under attack). */
        BN_WARN("the model diverged (non-finite parameters) in round %llu",
                (unsigned long long) nd->round);
        nd->diverged = true;
    }
}

/* Epochs of rounds.  BN_OK (also when stopped on request) or an error. */
static int s_run(bn_node_t *nd)
{
    s_oracle_ctx_t oc = { .nd = nd };
    if (nd->finished)
        return BN_OK;
    nd->rejoining = nd->resumed;
    for (nd->epoch = nd->first_epoch; nd->epoch < nd->opt.epochs; nd->epoch++) {
        int rc = s_epoch_begin(nd);
        if (rc != BN_OK)
            return rc;
        for (uint32_t r = 0; r < nd->R; r++, nd->round++) {
            if (nd->stop && *nd->stop) {
                BN_WARN("stopping at epoch %u round %u on request", nd->epoch + 1, r);
                return BN_OK;
            }
            if (s_skip(nd))
                continue;
            if (nd->honest)
                s_round_honest(nd, &oc);
            else
                bn_adversary_round(nd);
            s_check_finite(nd);
        }
        rc = bn_node_report_end(nd);
        if (rc != BN_OK)
            return rc;
        bn_node_checkpoint(nd);
        nd->rep.resumed = false;
    }
    /* Let the last round's messages drain to slower neighbours before closing. */
    bn_transport_drain(nd->tr, nd->stop);
    const bn_rule_stats_t *rs = nd->rule ? bn_rule_stats(nd->rule) : NULL;
    if (rs && rs->streamed)
        BN_INFO("aggregation: %llu neighbour models had their per-neighbour pass while the "
                "others were awaited (streaming)", (unsigned long long) rs->streamed);
    const bn_shm_stats_t *ss = nd->shm ? bn_shm_stats(nd->shm) : NULL;
    if (ss && (ss->published || ss->received || ss->torn || ss->stale || ss->unreadable))
        BN_INFO("shared memory: %llu models written to our ring (%llu references sent), %llu read "
                "from peers' rings; dropped %llu torn, %llu stale, %llu unreadable",
                (unsigned long long) ss->published, (unsigned long long) nd->shm_sent,
                (unsigned long long) ss->received, (unsigned long long) ss->torn,
                (unsigned long long) ss->stale, (unsigned long long) ss->unreadable);
    const bn_refpipe_stats_t *fs = nd->refs ? bn_refpipe_stats(nd->refs) : NULL;
    if (fs)
        BN_INFO("reference FIFOs: %llu references written to neighbours' FIFOs (%llu over the "
                "sockets instead: %llu full, %llu unavailable), %llu read from ours, %llu bytes "
                "skipped that did not frame",
                (unsigned long long) fs->sent, (unsigned long long) (fs->full + fs->unavailable),
                (unsigned long long) fs->full, (unsigned long long) fs->unavailable,
                (unsigned long long) fs->received, (unsigned long long) fs->bad_bytes);
    const bn_inbox_stats_t *is = bn_inbox_stats(nd->inbox);
    BN_INFO("inbox: at most %llu model payloads held at once (%s); %llu models came "
            "before their round", (unsigned long long) is->payloads_max,
            nd->rule && bn_rule_streams(nd->rule) ? "released once aggregated"
                                                 : "kept until the round ends",
            (unsigned long long) is->early);
    return BN_OK;
}

int bn_node_run(const bn_options_t *opt, volatile sig_atomic_t *stop)
{
    char err[512] = "";
    bn_node_t *nd = bn_node_new(opt, stop, err, sizeof err);
    if (!nd) {
        BN_ERROR("%s", err);
        return BN_EARG;
    }
    int rc = s_run(nd);
    if (nd->jsonl) {
        if (fclose(nd->jsonl) != 0 && rc == BN_OK) {
            BN_ERROR("cannot write %s", nd->jsonl_path);
            rc = BN_EIO;
        }
        nd->jsonl = NULL;
    }
    bn_node_destroy(&nd);
    return rc;
}
