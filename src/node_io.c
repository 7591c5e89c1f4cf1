/*  node_io.c -- the message path of a node's round: headers, sending a model
 *  to the neighbours, collecting theirs through the inbox; see node_state.h.
 */
#include "node_state.h"

#include <string.h>

void bn_node_header(const bn_node_t *nd, bn_wire_header_t *h, uint32_t kind, uint32_t origin)
{
    memset(h, 0, sizeof *h);
    h->version = BN_WIRE_VERSION;
    h->kind = kind;
    h->swarm_id = nd->swarm.swarm_id;
    h->sender = nd->id;
    h->epoch = nd->epoch;
    h->round = nd->round;
    h->topology = nd->g ? nd->g->fingerprint : 0;
    h->config = nd->config_fp;
    h->dtype = BN_DTYPE_F32;
    h->dim = (uint32_t) nd->dim;
    h->origin = origin;
}

void bn_node_send_model(bn_node_t *nd, const float *vec, bool to_honest_only, uint32_t only)
{
    double t0 = bn_now(), c0 = bn_cpu_now();
    bn_wire_header_t h;
    bn_node_header(nd, &h, BN_MSG_MODEL, nd->id);
    uint8_t hb[BN_WIRE_HEADER_MAX], sb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0, slen = 0;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    void *bytes;
    bn_buf_t *payload = bn_buf_new(nd->dim * sizeof(float), &bytes);
    if (!payload) {
        BN_WARN("round %llu: out of memory, model not sent", (unsigned long long) nd->round);
        return;
    }
    bn_wire_payload_encode(vec, nd->dim, bytes);
    /* The same bytes for every neighbour: once into the ring for the
     * same-host ones, who get the slot's name instead. */
    bn_buf_t *ref = NULL;
    void *rb = NULL;
    if (only == UINT32_MAX && bn_shm_publishing(nd->shm)) {
        bn_shm_ref_t r;
        if (bn_shm_publish(nd->shm, nd->epoch, nd->round, bytes, &r) == BN_OK
            && (ref = bn_buf_new(BN_SHM_REF_LEN, &rb)) != NULL) {
            bn_shm_ref_encode(&r, rb);
            h.kind = BN_MSG_MODEL_SHM;
            bn_wire_encode(&h, sb, sizeof sb, &slen);
        }
    }
    for (uint32_t i = 0; i < nd->deg; i++) {
        uint32_t j = nd->nbr[i];
        if ((to_honest_only && nd->is_byz[j]) || (only != UINT32_MAX && j != only))
            continue;
        /* A neighbour this node has given up on (it stalled) may read the
         * reference rounds from now, when the slot holds another round: it
         * gets the payload itself, which waits in its socket and lets it
         * see how far the swarm is when it wakes (the catch-up quorum). */
        if (ref && bn_shm_same_host(nd->shm, j) && bn_inbox_live(nd->inbox, j)) {
            /* through j's FIFO, else (full, gone, none) over the socket */
            if ((nd->refs && bn_refpipe_send(nd->refs, j, sb, slen, rb, BN_SHM_REF_LEN) == BN_OK)
                || bn_transport_send(nd->tr, j, sb, slen, NULL, 0, ref) == BN_OK)
                nd->shm_sent++;
        } else {
            bn_transport_send(nd->tr, j, hb, hlen, NULL, 0, payload);
        }
    }
    bn_buf_release(&ref);
    bn_buf_release(&payload);
    nd->rep.t_encode += bn_now() - t0;
    nd->rep.cpu_encode += bn_cpu_now() - c0;
}

void bn_node_admit(bn_node_t *nd, bn_msg_t *msg)
{
    bn_msg_t *model = NULL;
    uint32_t blame;
    bn_drop_reason_t why = nd->shm ? bn_shm_resolve(nd->shm, msg, &model, &blame) : BN_DROP_NONE;
    if (why != BN_DROP_NONE) {
        bn_inbox_drop(nd->inbox, blame, why);
        return;
    }
    bn_inbox_admit(nd->inbox, model ? model : msg);
    bn_msg_destroy(&model);
}

bool bn_node_collect(bn_node_t *nd, uint64_t round, double deadline, bn_node_done_fn done)
{
    for (;;) {
        bn_transport_pump(nd->tr);
        if (done(nd, round))
            return true;
        if (nd->stop && *nd->stop)
            return false;
        if (bn_inbox_catch_up(nd->inbox) != UINT64_MAX)
            return false;       /* the swarm is far ahead: skip, do not wait */
        double now = bn_now();
        if (now >= deadline)
            return false;
        int ms = (int) ((deadline - now) * 1000.0) + 1;
        if (ms > 200 && nd->stop)
            ms = 200;           /* so that a stop request is seen promptly */
        bn_msg_t *msg = NULL;
        int rc = bn_transport_recv(nd->tr, ms, &msg);
        if (rc == BN_OK) {
            bn_node_admit(nd, msg);
            bn_msg_destroy(&msg);
        } else if (rc == BN_TRANSPORT_FD) {
            /* every reference pending in our FIFO, one read for all */
            while (bn_refpipe_recv(nd->refs, &msg) == BN_OK) {
                bn_node_admit(nd, msg);
                bn_msg_destroy(&msg);
            }
        }
    }
}

double bn_node_deadline(const bn_node_t *nd)
{
    double timeout = nd->opt.round_timeout_ms / 1000.0;
    /* The first round also waits for peers that are still starting. */
    if (nd->round == 0 || nd->rep.resumed)
        timeout *= 3;
    return bn_now() + timeout;
}

void bn_node_close_round(bn_node_t *nd, bool completed)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < nd->deg; i++)
        if (nd->honest || !nd->is_byz[nd->nbr[i]])
            nd->nb_id[k++] = nd->nbr[i];
    nd->rep.missing += bn_inbox_close_round(nd->inbox, nd->round, nd->nb_id, k);
    if (!completed)
        nd->rep.rounds_timed_out++;
}
