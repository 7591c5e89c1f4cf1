/*  transport.c -- ZeroMQ sockets of one node; see transport.h.
 *
 *  Invariants: peers[i] is NULL until the first send to node i; every socket
 *  has a bounded queue; nothing here blocks except bn_transport_recv's poll,
 *  which always has the caller's timeout.
 */
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bn_transport_t {
    void *ctx;                  /* owned zmq context                                 */
    void *pull;                 /* bound input socket, NULL when !opts.bind         */
    void **peers;               /* n PUSH sockets, created lazily; owned            */
    void *monitor;              /* PUSH to the monitor, lazily; owned               */
    const bn_swarm_t *swarm;    /* borrowed                                          */
    uint32_t self;
    bn_transport_opts_t opts;
    char public_key[BN_KEY_Z85_LEN + 1];  /* ours, derived from the secret key */
    pthread_t zap_thread;       /* CURVE only                                        */
    void *zap;                  /* the ZAP REP socket, owned by zap_thread once started */
    bool zap_running;
    uint8_t (*keys)[32];        /* n binary public keys of the swarm (CURVE only)   */
    bn_transport_stats_t stats;
};

void bn_transport_opts_default(bn_transport_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->sndhwm = 4;
    opts->rcvhwm = 4;
    opts->max_msg_size = -1;
    opts->linger_ms = 2000;
    opts->bind = true;
}

/* ZAP handler: answers libzmq's authentication requests on inproc.  A client
 * is accepted iff its CURVE public key is one of the swarm's; its user id
 * becomes its node id in decimal. */
static void *s_zap_loop(void *arg)
{
    bn_transport_t *t = arg;
    void *rep = t->zap;   /* bound by bn_transport_new; pthread_create is the fence */
    for (;;) {
        zmq_msg_t f[8];
        int nf = 0, more = 1, rc = 0;
        while (more && nf < 8) {
            zmq_msg_init(&f[nf]);
            rc = zmq_msg_recv(&f[nf], rep, 0);
            if (rc < 0) {
                zmq_msg_close(&f[nf]);
                break;
            }
            more = zmq_msg_more(&f[nf]);
            nf++;
        }
        if (rc < 0) {
            for (int i = 0; i < nf; i++)
                zmq_msg_close(&f[i]);
            if (zmq_errno() == ETERM)
                break;
            continue;
        }
        /* version, request id, domain, address, identity, mechanism, key */
        const char *status = "400", *text = "unknown key";
        char user[16] = "";
        if (nf == 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0
            && zmq_msg_size(&f[6]) == 32) {
            for (uint32_t i = 0; i < t->swarm->n; i++) {
                if (memcmp(t->keys[i], zmq_msg_data(&f[6]), 32) == 0) {
                    status = "200";
                    text = "OK";
                    snprintf(user, sizeof user, "%u", i);
                    break;
                }
            }
        }
        const char *reqid = nf > 1 ? zmq_msg_data(&f[1]) : "";
        size_t reqid_len = nf > 1 ? zmq_msg_size(&f[1]) : 0;
        zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(rep, reqid, reqid_len, ZMQ_SNDMORE);
        zmq_send(rep, status, 3, ZMQ_SNDMORE);
        zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
        zmq_send(rep, "", 0, 0);
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
    }
    zmq_close(rep);
    return NULL;
}

static int s_set_int(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof value);
}

bn_transport_t *bn_transport_new(const bn_swarm_t *swarm, uint32_t self,
                                 const char *bind_endpoint, const bn_transport_opts_t *opts,
                                 char *err, size_t errlen)
{
    bn_transport_t *t = calloc(1, sizeof *t);
    if (!t) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        return NULL;
    }
    t->swarm = swarm;
    t->self = self;
    t->opts = *opts;
    t->peers = calloc(swarm->n ? swarm->n : 1, sizeof *t->peers);
    t->ctx = zmq_ctx_new();
    if (!t->peers || !t->ctx) {
        bn_fail(err, errlen, BN_ENOMEM, "cannot create the ZeroMQ context");
        goto fail;
    }
    zmq_ctx_set(t->ctx, ZMQ_IO_THREADS, 1);
    zmq_ctx_set(t->ctx, ZMQ_BLOCKY, 0);

    if (opts->secret_key) {
        if (!swarm->curve) {
            bn_fail(err, errlen, BN_EARG, "a secret key was given but the swarm file lists no public keys");
            goto fail;
        }
        if (strlen(opts->secret_key) != BN_KEY_Z85_LEN
            || zmq_curve_public(t->public_key, opts->secret_key) != 0) {
            bn_fail(err, errlen, BN_EARG, "secret key is not a 40-character Z85 CURVE key");
            goto fail;
        }
        t->keys = calloc(swarm->n, sizeof *t->keys);
        if (!t->keys) {
            bn_fail(err, errlen, BN_ENOMEM, "out of memory");
            goto fail;
        }
        for (uint32_t i = 0; i < swarm->n; i++)
            if (!zmq_z85_decode(t->keys[i], swarm->nodes[i].public_key)) {
                bn_fail(err, errlen, BN_EARG, "node %u's public key is not valid Z85", i);
                goto fail;
            }
        if (self != UINT32_MAX && strcmp(t->public_key, swarm->nodes[self].public_key) != 0) {
            bn_fail(err, errlen, BN_EARG, "the secret key does not belong to node %u's public key in the swarm file", self);
            goto fail;
        }
        /* Bound before any CURVE socket exists: libzmq lets CURVE clients
         * in unauthenticated while no ZAP handler is bound. */
        t->zap = zmq_socket(t->ctx, ZMQ_REP);
        int zero = 0;
        if (!t->zap || zmq_setsockopt(t->zap, ZMQ_LINGER, &zero, sizeof zero) != 0
            || zmq_bind(t->zap, "inproc://zeromq.zap.01") != 0) {
            bn_fail(err, errlen, BN_ENET, "cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
            if (t->zap)
                zmq_close(t->zap);
            t->zap = NULL;
            goto fail;
        }
        if (pthread_create(&t->zap_thread, NULL, s_zap_loop, t) != 0) {
            zmq_close(t->zap);
            t->zap = NULL;
            bn_fail(err, errlen, BN_ENOMEM, "cannot start the ZAP thread");
            goto fail;
        }
        t->zap_running = true;
    } else if (swarm->curve) {
        bn_fail(err, errlen, BN_EARG, "the swarm file lists CURVE keys: this node needs its secret key (--key)");
        goto fail;
    }

    if (opts->bind) {
        const char *ep = bind_endpoint ? bind_endpoint : swarm->nodes[self].endpoint;
        t->pull = zmq_socket(t->ctx, ZMQ_PULL);
        if (!t->pull)
            goto zfail;
        s_set_int(t->pull, ZMQ_RCVHWM, opts->rcvhwm);
        s_set_int(t->pull, ZMQ_LINGER, 0);
        zmq_setsockopt(t->pull, ZMQ_MAXMSGSIZE, &opts->max_msg_size, sizeof opts->max_msg_size);
        if (opts->secret_key) {
            s_set_int(t->pull, ZMQ_CURVE_SERVER, 1);
            zmq_setsockopt(t->pull, ZMQ_CURVE_SECRETKEY, opts->secret_key, BN_KEY_Z85_LEN);
            zmq_setsockopt(t->pull, ZMQ_ZAP_DOMAIN, "byznode", 7);
        }
        /* A tcp endpoint "tcp://host:port" binds the port on every interface
         * only if the host is given as *, so bind exactly what the file says. */
        if (zmq_bind(t->pull, ep) != 0) {
            bn_fail(err, errlen, BN_ENET, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    return t;
zfail:
    bn_fail(err, errlen, BN_ENET, "ZeroMQ: %s", zmq_strerror(zmq_errno()));
fail:
    bn_transport_destroy(&t);
    return NULL;
}

void bn_transport_destroy(bn_transport_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_transport_t *t = *self_p;
    if (t->pull)
        zmq_close(t->pull);
    if (t->peers)
        for (uint32_t i = 0; i < t->swarm->n; i++)
            if (t->peers[i])
                zmq_close(t->peers[i]);
    if (t->monitor)
        zmq_close(t->monitor);
    if (t->ctx)
        zmq_ctx_term(t->ctx);
    if (t->zap_running)
        pthread_join(t->zap_thread, NULL);
    free(t->peers);
    free(t->keys);
    free(t);
    *self_p = NULL;
}

/* Creates and connects the PUSH socket to a peer on first use. */
static void *s_peer_socket(bn_transport_t *t, uint32_t peer)
{
    void **slot = peer == BN_PEER_MONITOR ? &t->monitor : &t->peers[peer];
    if (*slot)
        return *slot;
    const bn_swarm_peer_t *p = peer == BN_PEER_MONITOR ? &t->swarm->monitor : &t->swarm->nodes[peer];
    if (!p->endpoint[0])
        return NULL;
    void *s = zmq_socket(t->ctx, ZMQ_PUSH);
    if (!s)
        return NULL;
    s_set_int(s, ZMQ_SNDHWM, peer == BN_PEER_MONITOR ? 64 : t->opts.sndhwm);
    s_set_int(s, ZMQ_LINGER, t->opts.linger_ms);
    if (t->opts.secret_key) {
        if (!p->public_key[0]) {
            BN_ERROR("no public key for %s in the swarm file; cannot talk CURVE to it", p->endpoint);
            zmq_close(s);
            return NULL;
        }
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->public_key, BN_KEY_Z85_LEN);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, t->public_key, BN_KEY_Z85_LEN);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, t->opts.secret_key, BN_KEY_Z85_LEN);
    }
    if (zmq_connect(s, p->endpoint) != 0) {
        BN_ERROR("cannot connect to %s: %s", p->endpoint, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    *slot = s;
    return s;
}

int bn_transport_send(bn_transport_t *t, uint32_t peer, const void *header, size_t header_len,
                      const void *middle, size_t middle_len, zmq_msg_t *payload)
{
    if (peer != BN_PEER_MONITOR && peer >= t->swarm->n)
        return BN_EARG;
    void *s = s_peer_socket(t, peer);
    if (!s)
        return BN_ENET;
    /* libzmq learns that the peer consumed messages through commands it
     * processes at most once a millisecond on the send path; at faster round
     * rates a DONTWAIT send sees a stale count and fails on a queue that is
     * really empty.  ZMQ_EVENTS processes pending commands unthrottled. */
    int events = 0;
    size_t events_len = sizeof events;
    zmq_getsockopt(s, ZMQ_EVENTS, &events, &events_len);
    /* Only the first frame can hit the high-water mark: libzmq accepts the
     * rest of a multipart message once its first frame is in. */
    if (zmq_send(s, header, header_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN) {
            t->stats.send_dropped++;
            return BN_ETIMEOUT;
        }
        return BN_ENET;
    }
    size_t bytes = header_len;
    if (middle) {
        zmq_send(s, middle, middle_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        bytes += middle_len;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (payload)
        zmq_msg_copy(&m, payload);
    bytes += zmq_msg_size(&m);
    if (zmq_msg_send(&m, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return BN_ENET;
    }
    t->stats.msgs_sent++;
    t->stats.bytes_sent += bytes;
    return BN_OK;
}

int bn_transport_recv(bn_transport_t *t, int timeout_ms, bn_rx_t *rx)
{
    rx->n = 0;
    rx->truncated = false;
    rx->auth_id = BN_AUTH_NONE;
    if (!t->pull)
        return BN_EARG;
    zmq_pollitem_t item = { t->pull, 0, ZMQ_POLLIN, 0 };
    int rc = zmq_poll(&item, 1, timeout_ms);
    if (rc < 0)
        return BN_ENET;
    if (rc == 0)
        return BN_ETIMEOUT;
    size_t bytes = 0;
    for (;;) {
        zmq_msg_t tmp, *m = rx->n < BN_RX_MAX_FRAMES ? &rx->frames[rx->n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, t->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            if (rx->n == 0)
                return zmq_errno() == EAGAIN ? BN_ETIMEOUT : BN_ENET;
            break;
        }
        bytes += zmq_msg_size(m);
        if (rx->n == 0 && t->keys) {
            const char *uid = zmq_msg_gets(m, "User-Id");
            char *end = NULL;
            if (uid && *uid) {
                unsigned long v = strtoul(uid, &end, 10);
                if (end && *end == 0 && v < t->swarm->n)
                    rx->auth_id = (uint32_t) v;
            }
        }
        int more = zmq_msg_more(m);
        if (m == &tmp) {
            rx->truncated = true;
            zmq_msg_close(&tmp);
        } else {
            rx->n++;
        }
        if (!more)
            break;
    }
    t->stats.msgs_received++;
    t->stats.bytes_received += bytes;
    return BN_OK;
}

void bn_rx_close(bn_rx_t *rx)
{
    for (int i = 0; i < rx->n; i++)
        zmq_msg_close(&rx->frames[i]);
    rx->n = 0;
}

int bn_key_read(const char *path, char *key, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    char line[256];
    int rc = bn_fail(err, errlen, BN_EFORMAT, "%s: no 'secret-key <Z85>' line", path);
    while (fgets(line, sizeof line, f)) {
        char k[64];
        if (sscanf(line, "secret-key %63s", k) == 1 && strlen(k) == BN_KEY_Z85_LEN) {
            memcpy(key, k, BN_KEY_Z85_LEN + 1);
            rc = BN_OK;
            break;
        }
    }
    fclose(f);
    return rc;
}

const bn_transport_stats_t *bn_transport_stats(const bn_transport_t *t)
{
    return &t->stats;
}
