/*  adversary.c -- one round of a Byzantine node; see adversary.h. */
#include "adversary.h"

#include <stdlib.h>
#include <string.h>

#include "attack.h"
#include "topology.h"

/* Lowest-id attacker adjacent to honest node h: it relays h's model to the
 * attackers that do not hear h themselves (omniscient mode). */
static uint32_t s_relay_of(const bn_node_t *nd, uint32_t h)
{
    uint32_t deg;
    const uint32_t *nb = bn_topology_neighbors(nd->g, h, &deg);
    for (uint32_t i = 0; i < deg; i++)
        if (nd->is_byz[nb[i]])
            return nb[i];
    return UINT32_MAX;
}

/* First phase: every honest neighbour that is not given up has arrived. */
static bool s_done_local(bn_node_t *nd, uint64_t round)
{
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if (!nd->is_byz[j] && !bn_inbox_model(nd->inbox, round, j) && bn_inbox_waits_for(nd->inbox, j))
            return false;
    }
    return true;
}

/* Second phase: every relay it should get has arrived. */
static bool s_done_relays(bn_node_t *nd, uint64_t round)
{
    for (uint32_t h = 0; h < nd->n; h++) {
        if (nd->is_byz[h] || h == nd->id || bn_topology_has_edge(nd->g, nd->id, h))
            continue;
        uint32_t relay = s_relay_of(nd, h);
        if (relay == UINT32_MAX || relay == nd->id || !bn_inbox_live(nd->inbox, relay))
            continue;
        if (!bn_inbox_relay_settled(nd->inbox, round, h))
            return false;
    }
    return true;
}

/* Step 3: relay the honest neighbours' models this attacker is the relay
 * of.  For one whose model did not come or was not finite it sends an empty
 * COLLUDE, so that the other attackers do not wait for it until the
 * deadline (s_done_relays). */
static void s_relay(bn_node_t *nd)
{
    bn_wire_header_t h;
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen;
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t hnode = nd->nbr[i];
        if (nd->is_byz[hnode] || s_relay_of(nd, hnode) != nd->id)
            continue;
        const bn_buf_t *model = bn_inbox_model_buf(nd->inbox, nd->round, hnode);
        bn_node_header(nd, &h, BN_MSG_COLLUDE, hnode);
        if (!model)
            h.dim = 0;
        bn_wire_encode(&h, hb, sizeof hb, &hlen);
        for (uint32_t a = 0; a < nd->n; a++)
            if (a != nd->id && nd->is_byz[a] && !bn_topology_has_edge(nd->g, a, hnode))
                bn_transport_send(nd->tr, a, hb, hlen, NULL, 0, model);
    }
}

/* Every honest model this attacker knows this round, into nb_ptr / nb_id. */
static uint32_t s_known_models(bn_node_t *nd)
{
    uint32_t k = 0;
    for (uint32_t j = 0; j < nd->n; j++) {
        if (nd->is_byz[j] || j == nd->id)
            continue;
        const float *x = bn_inbox_model(nd->inbox, nd->round, j);
        if (!x && nd->opt.omniscient)
            x = bn_inbox_relay(nd->inbox, nd->round, j);
        if (!x)
            continue;
        nd->nb_ptr[k] = x;
        nd->nb_id[k++] = j;
    }
    return k;
}

/* The attacker's own model: the mean of its model and the k it received.
 * Blocks of coordinates, neighbours in order within a block: per coordinate
 * the same sums in the same order as one pass per coordinate, but the
 * inner loop runs over contiguous floats (it vectorises). */
static void s_own_mean(bn_node_t *nd, uint32_t k)
{
    double t0 = bn_now(), c0 = bn_cpu_now();
    enum { BLOCK = 1024 };
    float acc[BLOCK];
    const float inv = (float) (k + 1);
    for (size_t d0 = 0; d0 < nd->dim; d0 += BLOCK) {
        size_t len = BN_MIN((size_t) BLOCK, nd->dim - d0);
        memcpy(acc, nd->x + d0, len * sizeof(float));
        for (uint32_t i = 0; i < k; i++) {
            const float *v = nd->nb_ptr[i] + d0;
            for (size_t d = 0; d < len; d++)
                acc[d] += v[d];
        }
        for (size_t d = 0; d < len; d++)
            nd->x[d0 + d] = acc[d] / inv;
    }
    nd->rep.t_aggregate += bn_now() - t0;
    nd->rep.cpu_aggregate += bn_cpu_now() - c0;
}

/* Step 4: craft and send. */
static void s_craft_and_send(bn_node_t *nd, uint32_t k)
{
    bn_attack_kind_t kind = nd->opt.attack.kind;
    double t0 = bn_now(), c0 = bn_cpu_now();
    bn_attack_input_t in = { nd->dim, k, nd->nb_ptr, nd->nb_id, nd->x_prev, nd->x, &nd->attack_rng,
                             UINT32_MAX, NULL, nd->g, NULL };
    if (kind == BN_ATTACK_CRASH)
        return;                                  /* sends nothing */
    if (!bn_attack_per_victim(kind)) {
        (void) bn_attack_craft(&nd->opt.attack, &in, nd->craft);
        nd->rep.t_aggregate += bn_now() - t0;
        nd->rep.cpu_aggregate += bn_cpu_now() - c0;
        bn_node_send_model(nd, nd->craft, true, UINT32_MAX);
        return;
    }
    /* The victims' neighbourhoods overlap: the distances between the
     * honest models are computed once a round (n x n doubles, at first use). */
    if (!nd->pair_dist)
        nd->pair_dist = malloc((size_t) nd->n * nd->n * sizeof *nd->pair_dist);
    bn_attack_pair_cache_reset(nd->pair_dist, k);
    in.pair_dist = nd->pair_dist;
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if (nd->is_byz[j])
            continue;
        in.victim = j;
        in.victim_x = bn_inbox_model(nd->inbox, nd->round, j);
        double tc = bn_now(), cc = bn_cpu_now();
        (void) bn_attack_craft(&nd->opt.attack, &in, nd->craft);
        nd->rep.t_aggregate += bn_now() - tc;
        nd->rep.cpu_aggregate += bn_cpu_now() - cc;
        bn_node_send_model(nd, nd->craft, true, j);
    }
}

void bn_adversary_round(bn_node_t *nd)
{
    memcpy(nd->x_prev, nd->x, nd->dim * sizeof(float));
    if (bn_attack_trains(nd->opt.attack.kind))
        bn_node_local_steps(nd);
    if (nd->opt.rule.kind == BN_RULE_STANDALONE)
        return;
    double t0 = bn_now();
    double deadline = bn_node_deadline(nd);
    /* Listen to the honest neighbours first: the attack uses their models. */
    bool done = bn_node_collect(nd, nd->round, deadline, s_done_local);
    bn_node_close_round(nd, done);
    if (nd->opt.omniscient) {
        s_relay(nd);
        bool relays = bn_node_collect(nd, nd->round, deadline, s_done_relays);
        if (done && !relays)
            nd->rep.rounds_timed_out++;         /* at most once a round */
    }
    nd->rep.t_wait += bn_now() - t0;

    uint32_t k = s_known_models(nd);
    s_craft_and_send(nd, k);
    if (k > 0)
        s_own_mean(nd, k);
}
