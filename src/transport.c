/*  transport.c -- ZeroMQ sockets of one node; see transport.h.
 *
 *  Invariants: peers[i] is NULL until the first send to node i; every socket
 *  has a bounded queue; nothing here blocks except bn_transport_recv's poll,
 *  which always has the caller's timeout, and bn_transport_drain, which
 *  honours the stop flag.  Held (delayed) messages are s_out_t items owned
 *  by the fault FIFO until they are sent.
 */
#include "transport.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "fault.h"

#define S_MONITOR_LINGER_MS 30000
#define S_MONITOR_GRACE_MS 200

struct bn_buf_t {
    zmq_msg_t msg;              /* owns one reference to the bytes */
};

struct bn_msg_t {
    uint32_t  count;            /* frames received                      */
    uint32_t  held;             /* frames[0..held) were initialised     */
    bool      taken[BN_MSG_MAX_FRAMES];
    zmq_msg_t frames[BN_MSG_MAX_FRAMES];
    uint32_t  auth;
    bool      oversize;
};

/* A send held by the fault delay: header and middle copied, payload shared. */
typedef struct {
    uint32_t  peer;
    size_t    header_len, middle_len;
    bool      has_middle;
    bn_buf_t *payload;          /* may be NULL */
    uint8_t   bytes[];          /* header then middle */
} s_out_t;

struct bn_transport_t {
    void *ctx;                  /* owned zmq context                                 */
    void *pull;                 /* bound input socket, NULL when !opts.bind         */
    void **peers;               /* n PUSH sockets, created lazily; owned            */
    void *monitor;              /* PUSH to the monitor, lazily; owned               */
    void *monitor_events;       /* PAIR reading the monitor socket's connect events */
    bool monitor_connected;     /* from the events read so far                       */
    bool monitor_refused;       /* a connect failed (retried) since the last connect */
    const bn_swarm_t *swarm;    /* borrowed                                          */
    uint32_t self;
    bn_transport_opts_t opts;   /* opts.secret_key points at secret_key below       */
    char secret_key[BN_KEY_Z85_LEN + 1];
    char public_key[BN_KEY_Z85_LEN + 1];  /* ours, derived from the secret key */
    pthread_t zap_thread;       /* CURVE only                                        */
    void *zap;                  /* the ZAP REP socket, owned by zap_thread once started */
    bool zap_running;
    uint8_t (*keys)[32];        /* n binary public keys of the swarm (CURVE only)   */
    bn_fault_t *fault;          /* injected loss and delay; owned                   */
    int watch_fd;               /* polled beside the PULL socket, -1: none; borrowed */
    bn_transport_stats_t stats;
};

static void s_out_free(void *item);

/* ---- buffers ----------------------------------------------------------- */

static void s_free_bytes(void *data, void *hint)
{
    (void) hint;
    free(data);
}

bn_buf_t *bn_buf_new(size_t len, void **data)
{
    bn_buf_t *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    if (len == 0) {
        zmq_msg_init(&b->msg);
    } else {
        /* Our own malloc'd bytes (16-byte aligned), never libzmq's in-place
         * small-message storage, whose alignment is not promised. */
        void *p = malloc(len);
        if (!p || zmq_msg_init_data(&b->msg, p, len, s_free_bytes, NULL) != 0) {
            free(p);
            free(b);
            return NULL;
        }
    }
    if (data)
        *data = zmq_msg_data(&b->msg);
    return b;
}

bn_buf_t *bn_buf_ref(const bn_buf_t *b)
{
    if (!b)
        return NULL;
    bn_buf_t *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    zmq_msg_init(&c->msg);
    /* zmq_msg_copy only raises the reference count of the shared bytes. */
    if (zmq_msg_copy(&c->msg, (zmq_msg_t *) &b->msg) != 0) {
        zmq_msg_close(&c->msg);
        free(c);
        return NULL;
    }
    return c;
}

void bn_buf_release(bn_buf_t **b)
{
    if (!b || !*b)
        return;
    zmq_msg_close(&(*b)->msg);
    free(*b);
    *b = NULL;
}

const void *bn_buf_data(const bn_buf_t *b)
{
    return zmq_msg_data((zmq_msg_t *) &b->msg);
}

size_t bn_buf_size(const bn_buf_t *b)
{
    return zmq_msg_size((zmq_msg_t *) &b->msg);
}

/* ---- received messages ------------------------------------------------- */

bn_msg_t *bn_msg_new(uint32_t count, const void *const *frames, const size_t *lens, uint32_t auth,
                     bool oversize)
{
    bn_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->count = count;
    m->auth = auth;
    m->oversize = oversize;
    for (uint32_t i = 0; !oversize && i < count && i < BN_MSG_MAX_FRAMES; i++) {
        if (zmq_msg_init_size(&m->frames[i], lens[i]) != 0) {
            bn_msg_destroy(&m);
            return NULL;
        }
        if (lens[i])
            memcpy(zmq_msg_data(&m->frames[i]), frames[i], lens[i]);
        m->held++;
    }
    return m;
}

bn_msg_t *bn_msg_wrap(const void *header, size_t header_len, bn_buf_t **payload, uint32_t auth)
{
    const void *frames[1] = { header };
    bn_msg_t *m = bn_msg_new(1, frames, &header_len, auth, false);
    if (!m)
        return NULL;
    m->count = 2;
    zmq_msg_init(&m->frames[1]);
    zmq_msg_move(&m->frames[1], &(*payload)->msg);
    m->held = 2;
    bn_buf_release(payload);        /* its zmq_msg is empty now */
    return m;
}

uint32_t bn_msg_count(const bn_msg_t *m)
{
    return m->count;
}

const void *bn_msg_frame(const bn_msg_t *m, uint32_t i, size_t *len)
{
    if (i >= m->held || m->taken[i]) {
        *len = 0;
        return NULL;
    }
    *len = zmq_msg_size((zmq_msg_t *) &m->frames[i]);
    return zmq_msg_data((zmq_msg_t *) &m->frames[i]);
}

bn_buf_t *bn_msg_take(bn_msg_t *m, uint32_t i)
{
    if (i >= m->held || m->taken[i])
        return NULL;
    zmq_msg_t *f = &m->frames[i];
    bn_buf_t *b;
    if (((uintptr_t) zmq_msg_data(f) & 3u) == 0) {
        b = malloc(sizeof *b);
        if (!b)
            return NULL;
        zmq_msg_init(&b->msg);
        zmq_msg_move(&b->msg, f);
    } else {
        void *p;
        b = bn_buf_new(zmq_msg_size(f), &p);
        if (!b)
            return NULL;
        memcpy(p, zmq_msg_data(f), zmq_msg_size(f));
    }
    zmq_msg_close(f);
    m->taken[i] = true;
    return b;
}

uint32_t bn_msg_auth(const bn_msg_t *m)
{
    return m->auth;
}

bool bn_msg_oversize(const bn_msg_t *m)
{
    return m->oversize;
}

static void s_msg_release_frames(bn_msg_t *m)
{
    for (uint32_t i = 0; i < m->held; i++)
        if (!m->taken[i])
            zmq_msg_close(&m->frames[i]);
    m->held = 0;
}

void bn_msg_destroy(bn_msg_t **m)
{
    if (!m || !*m)
        return;
    s_msg_release_frames(*m);
    free(*m);
    *m = NULL;
}

/* ---- the transport ----------------------------------------------------- */

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

/* CURVE: the swarm's keys, ours checked against the file, and the ZAP
 * handler thread, bound before any CURVE socket exists (libzmq lets CURVE
 * clients in unauthenticated while no ZAP handler is bound). */
static int s_setup_curve(bn_transport_t *t, char *err, size_t errlen)
{
    const bn_swarm_t *swarm = t->swarm;
    const char *secret = t->opts.secret_key;
    if (!secret)
        return swarm->curve ? bn_fail(err, errlen, BN_EARG, "the swarm file lists CURVE keys: "
                                      "this node needs its secret key (--key)") : BN_OK;
    if (!swarm->curve)
        return bn_fail(err, errlen, BN_EARG, "a secret key was given but the swarm file lists no public keys");
    if (strlen(secret) != BN_KEY_Z85_LEN || zmq_curve_public(t->public_key, secret) != 0)
        return bn_fail(err, errlen, BN_EARG, "secret key is not a 40-character Z85 CURVE key");
    t->keys = calloc(swarm->n, sizeof *t->keys);
    if (!t->keys)
        return bn_fail(err, errlen, BN_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < swarm->n; i++)
        if (!zmq_z85_decode(t->keys[i], swarm->nodes[i].public_key))
            return bn_fail(err, errlen, BN_EARG, "node %u's public key is not valid Z85", i);
    if (t->self != UINT32_MAX && strcmp(t->public_key, swarm->nodes[t->self].public_key) != 0)
        return bn_fail(err, errlen, BN_EARG, "the secret key does not belong to node %u's public key "
                       "in the swarm file", t->self);
    t->zap = zmq_socket(t->ctx, ZMQ_REP);
    int zero = 0;
    if (!t->zap || zmq_setsockopt(t->zap, ZMQ_LINGER, &zero, sizeof zero) != 0
        || zmq_bind(t->zap, "inproc://zeromq.zap.01") != 0) {
        int rc = bn_fail(err, errlen, BN_ENET, "cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
        if (t->zap)
            zmq_close(t->zap);
        t->zap = NULL;
        return rc;
    }
    if (pthread_create(&t->zap_thread, NULL, s_zap_loop, t) != 0) {
        zmq_close(t->zap);
        t->zap = NULL;
        return bn_fail(err, errlen, BN_ENOMEM, "cannot start the ZAP thread");
    }
    t->zap_running = true;
    return BN_OK;
}

/* The bound PULL socket (a CURVE server with a secret key). */
static int s_bind(bn_transport_t *t, const char *ep, char *err, size_t errlen)
{
    const bn_transport_opts_t *opts = &t->opts;
    t->pull = zmq_socket(t->ctx, ZMQ_PULL);
    if (!t->pull)
        return bn_fail(err, errlen, BN_ENET, "ZeroMQ: %s", zmq_strerror(zmq_errno()));
    s_set_int(t->pull, ZMQ_RCVHWM, opts->rcvhwm);
    s_set_int(t->pull, ZMQ_LINGER, 0);
    /* One frame above the whole-message bound is refused before it is buffered. */
    zmq_setsockopt(t->pull, ZMQ_MAXMSGSIZE, &opts->max_msg_size, sizeof opts->max_msg_size);
    if (opts->secret_key) {
        s_set_int(t->pull, ZMQ_CURVE_SERVER, 1);
        zmq_setsockopt(t->pull, ZMQ_CURVE_SECRETKEY, opts->secret_key, BN_KEY_Z85_LEN);
        zmq_setsockopt(t->pull, ZMQ_ZAP_DOMAIN, "byznode", 7);
    }
    /* A tcp endpoint "tcp://host:port" binds the port on every interface
     * only if the host is given as *, so bind exactly what the file says. */
    if (zmq_bind(t->pull, ep) != 0)
        return bn_fail(err, errlen, BN_ENET, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
    return BN_OK;
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
    t->watch_fd = -1;
    t->swarm = swarm;
    t->self = self;
    t->opts = *opts;
    if (opts->secret_key) {
        snprintf(t->secret_key, sizeof t->secret_key, "%s", opts->secret_key);
        t->opts.secret_key = t->secret_key;
    }
    t->fault = bn_fault_new(opts->fault_drop, opts->fault_delay_ms, opts->fault_seed,
                            self == UINT32_MAX ? 0 : self, s_out_free);
    t->peers = calloc(swarm->n ? swarm->n : 1, sizeof *t->peers);
    t->ctx = zmq_ctx_new();
    if (!t->peers || !t->ctx || !t->fault) {
        bn_fail(err, errlen, BN_ENOMEM, "cannot create the ZeroMQ context");
        goto fail;
    }
    zmq_ctx_set(t->ctx, ZMQ_IO_THREADS, 1);
    zmq_ctx_set(t->ctx, ZMQ_BLOCKY, 0);
    if (s_setup_curve(t, err, errlen) != BN_OK)
        goto fail;
    if (opts->bind && s_bind(t, bind_endpoint ? bind_endpoint : swarm->nodes[self].endpoint,
                             err, errlen) != BN_OK)
        goto fail;
    return t;
fail:
    bn_transport_destroy(&t);
    return NULL;
}

/* Reads the connect, connect-retried and disconnect events of the PUSH
 * socket to the monitor queued since the last call (at each report and at
 * exit, so the queue stays short), waiting up to wait_ms for the first one
 * (0: not at all), and returns whether it has a live connection now. */
static bool s_monitor_events(bn_transport_t *t, int wait_ms)
{
    if (!t->monitor_events)
        return true;            /* no events to go by: assume it is there */
    for (;; wait_ms = 0) {
        if (wait_ms > 0) {
            zmq_pollitem_t it = { t->monitor_events, 0, ZMQ_POLLIN, 0 };
            if (zmq_poll(&it, 1, wait_ms) <= 0)
                break;
        }
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, t->monitor_events, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= sizeof event)
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) {             /* the second frame: the endpoint */
            zmq_msg_t addr;
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, t->monitor_events, ZMQ_DONTWAIT);
            zmq_msg_close(&addr);
        }
        if (event == ZMQ_EVENT_CONNECTED)
            t->monitor_connected = true, t->monitor_refused = false;
        else if (event == ZMQ_EVENT_DISCONNECTED)
            t->monitor_connected = false;
        else if (event == ZMQ_EVENT_CONNECT_RETRIED)
            t->monitor_refused = true;
    }
    return t->monitor_connected;
}

static bool s_monitor_connected(bn_transport_t *t)
{
    return s_monitor_events(t, 0);
}

/* At exit, not connected, nothing refused yet: the connection may be on its
 * way.  On a crowded host (300 nodes on 2 cores) the I/O thread can take
 * seconds to connect and greet the monitor, and a report closed in that
 * window with the ordinary linger was lost (7 of 240 at n = 300, 2 Dec
 * 2026).  Waits (on the event socket, no polling loop) up to
 * S_MONITOR_LINGER_MS for the connection or a refusal; whether connected. */
static bool s_monitor_await(bn_transport_t *t)
{
    double t0 = bn_now();
    while (!t->monitor_connected && !t->monitor_refused) {
        int left = S_MONITOR_LINGER_MS - (int) ((bn_now() - t0) * 1000.0);
        if (left <= 0)
            break;
        s_monitor_events(t, left);
    }
    return t->monitor_connected;
}

/* The long linger of the monitor socket is for a monitor that is there but
 * slow to read.  Not connected at exit, the node first waits for a
 * connection still on its way (s_monitor_await), unless a connect was
 * already refused or nothing can be listening: an ipc endpoint whose socket
 * file does not exist (no monitor was started, as for a node run alone).
 * Connected then: the long linger.  Else the report waits the socket's
 * ordinary linger (linger_ms), or only S_MONITOR_GRACE_MS when the socket
 * file does not exist. */
static void s_monitor_set_linger(bn_transport_t *t)
{
    if (t->opts.linger_ms < 0 || s_monitor_connected(t))
        return;
    const char *ep = t->swarm->monitor.endpoint;
    bool absent = strncmp(ep, "ipc://", 6) == 0 && ep[6] != '@' && access(ep + 6, F_OK) != 0;
    if (!absent && s_monitor_await(t))
        return;
    s_set_int(t->monitor, ZMQ_LINGER,
              absent ? BN_MIN(t->opts.linger_ms, S_MONITOR_GRACE_MS) : t->opts.linger_ms);
}

void bn_transport_destroy(bn_transport_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_transport_t *t = *self_p;
    if (t->pull)
        zmq_close(t->pull);
    /* Held messages reference zmq bytes: release them before the context. */
    bn_fault_destroy(&t->fault);
    if (t->peers)
        for (uint32_t i = 0; i < t->swarm->n; i++)
            if (t->peers[i])
                zmq_close(t->peers[i]);
    if (t->monitor) {
        s_monitor_set_linger(t);
        /* Stop the events before either socket closes, and read what is
         * left: an event still queued when the sockets close is never freed
         * by libzmq (its endpoint string leaked, LeakSanitizer). */
        if (t->monitor_events) {
            zmq_socket_monitor(t->monitor, NULL, 0);
            (void) s_monitor_connected(t);
            zmq_close(t->monitor_events);
            t->monitor_events = NULL;
        }
        zmq_close(t->monitor);
    }
    if (t->ctx)
        zmq_ctx_term(t->ctx);
    if (t->zap_running)
        pthread_join(t->zap_thread, NULL);
    free(t->peers);
    free(t->keys);
    free(t);
    *self_p = NULL;
}

/* Subscribes to the monitor socket's connect and disconnect events (read
 * at each report and at exit, s_monitor_connected).  Without them the node assumes a
 * monitor is there and lingers the full time. */
static void s_watch_monitor(bn_transport_t *t, void *s)
{
    if (zmq_socket_monitor(s, "inproc://bn-monitor-events",
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED) != 0)
        return;
    void *pair = zmq_socket(t->ctx, ZMQ_PAIR);
    if (!pair)
        return;
    s_set_int(pair, ZMQ_LINGER, 0);
    if (zmq_connect(pair, "inproc://bn-monitor-events") != 0) {
        zmq_close(pair);
        return;
    }
    t->monitor_events = pair;
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
    /* The report to the monitor is a node's last message: on a crowded host
     * (300 nodes on 2 cores, 240 final reports of a model each) the monitor
     * can take longer than linger_ms to read it, and a node that exits
     * meanwhile loses it; its socket waits up to S_MONITOR_LINGER_MS. */
    s_set_int(s, ZMQ_LINGER, peer == BN_PEER_MONITOR && t->opts.linger_ms >= 0
                             ? BN_MAX(t->opts.linger_ms, S_MONITOR_LINGER_MS) : t->opts.linger_ms);
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
    /* Watched before it connects: a connection made before the watch
     * started would never be reported. */
    if (peer == BN_PEER_MONITOR)
        s_watch_monitor(t, s);
    if (zmq_connect(s, p->endpoint) != 0) {
        BN_ERROR("cannot connect to %s: %s", p->endpoint, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    *slot = s;
    return s;
}

/* Hands one message to libzmq.  Only the first frame can hit the high-water
 * mark: libzmq accepts the rest of a multipart message once its first frame
 * is in. */
static int s_send_now(bn_transport_t *t, uint32_t peer, const void *header, size_t header_len,
                      const void *middle, size_t middle_len, bool has_middle,
                      const bn_buf_t *payload)
{
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
    if (zmq_send(s, header, header_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN) {
            t->stats.send_dropped++;
            return BN_ETIMEOUT;
        }
        return BN_ENET;
    }
    size_t bytes = header_len;
    if (has_middle) {
        zmq_send(s, middle, middle_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        bytes += middle_len;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (payload)
        zmq_msg_copy(&m, (zmq_msg_t *) &payload->msg);
    bytes += zmq_msg_size(&m);
    if (zmq_msg_send(&m, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return BN_ENET;
    }
    t->stats.msgs_sent++;
    t->stats.bytes_sent += bytes;
    return BN_OK;
}

static void s_out_free(void *item)
{
    s_out_t *o = item;
    if (!o)
        return;
    bn_buf_release(&o->payload);
    free(o);
}

/* Sends every held message that is due. */
static void s_flush_due(bn_transport_t *t)
{
    if (!bn_fault_held(t->fault))
        return;
    double now = bn_now();
    s_out_t *o;
    while ((o = bn_fault_pop_due(t->fault, now)) != NULL) {
        s_send_now(t, o->peer, o->bytes, o->header_len, o->bytes + o->header_len, o->middle_len,
                   o->has_middle, o->payload);
        s_out_free(o);
    }
}

int bn_transport_send(bn_transport_t *t, uint32_t peer, const void *header, size_t header_len,
                      const void *middle, size_t middle_len, const bn_buf_t *payload)
{
    if (peer != BN_PEER_MONITOR && peer >= t->swarm->n)
        return BN_EARG;
    if (peer == BN_PEER_MONITOR)
        (void)s_monitor_connected(t);   /* keeps the event queue short */
    bn_fault_verdict_t v = bn_fault_decide(t->fault);
    t->stats.fault_dropped = bn_fault_stats(t->fault)->dropped;
    if (v == BN_FAULT_DROP)
        return BN_OK;
    if (v == BN_FAULT_HOLD) {
        size_t mlen = middle ? middle_len : 0;
        s_out_t *o = malloc(sizeof *o + header_len + mlen);
        if (o) {
            o->peer = peer;
            o->header_len = header_len;
            o->middle_len = mlen;
            o->has_middle = middle != NULL;
            memcpy(o->bytes, header, header_len);
            if (mlen)
                memcpy(o->bytes + header_len, middle, mlen);
            o->payload = payload ? bn_buf_ref(payload) : NULL;
            if (!payload || o->payload) {
                bn_fault_hold(t->fault, bn_now(), o);
                t->stats.fault_delayed = bn_fault_stats(t->fault)->delayed;
                return BN_OK;
            }
            free(o);
        }
        /* out of memory: send it now rather than lose it */
    }
    return s_send_now(t, peer, header, header_len, middle, middle_len, middle != NULL, payload);
}

/* Reads the frames of one message that zmq_poll said is there. */
static int s_read_message(bn_transport_t *t, bn_msg_t *m)
{
    size_t bytes = 0;
    for (;;) {
        zmq_msg_t tmp, *f = m->held < BN_MSG_MAX_FRAMES && !m->oversize ? &m->frames[m->held] : &tmp;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, t->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(f);
            if (m->count == 0)
                return zmq_errno() == EAGAIN ? BN_ETIMEOUT : BN_ENET;
            break;
        }
        m->count++;
        bytes += zmq_msg_size(f);
        if (m->count == 1 && t->keys) {
            const char *uid = zmq_msg_gets(f, "User-Id");
            char *end = NULL;
            if (uid && *uid) {
                unsigned long v = strtoul(uid, &end, 10);
                if (end && *end == 0 && v < t->swarm->n)
                    m->auth = (uint32_t) v;
            }
        }
        int more = zmq_msg_more(f);
        if (f == &tmp)
            zmq_msg_close(&tmp);
        else
            m->held++;
        if (!m->oversize && t->opts.max_msg_size >= 0 && bytes > (uint64_t) t->opts.max_msg_size) {
            m->oversize = true;      /* bounded per message: let go of all of it */
            s_msg_release_frames(m);
        }
        if (!more)
            break;
    }
    t->stats.msgs_received++;
    t->stats.bytes_received += bytes;
    if (m->oversize) {
        t->stats.oversize++;
#if defined(__GLIBC__)
        /* libzmq buffered the whole message before we saw its first frame;
         * give the freed pages back so that it leaves no lasting growth. */
        malloc_trim(0);
#endif
    }
    return BN_OK;
}

int bn_transport_recv(bn_transport_t *t, int timeout_ms, bn_msg_t **msg)
{
    *msg = NULL;
    if (!t->pull)
        return BN_EARG;
    double deadline = timeout_ms < 0 ? INFINITY : bn_now() + timeout_ms / 1000.0;
    zmq_pollitem_t item[2] = { { t->pull, 0, ZMQ_POLLIN, 0 }, { NULL, t->watch_fd, ZMQ_POLLIN, 0 } };
    int nitems = t->watch_fd >= 0 ? 2 : 1;
    for (;;) {
        s_flush_due(t);
        int ms = -1;
        if (timeout_ms >= 0) {
            double left = (deadline - bn_now()) * 1000.0;
            ms = left <= 0 ? 0 : (int) left + 1;
        }
        int due = bn_fault_next_due_ms(t->fault, bn_now());
        if (due >= 0 && (ms < 0 || due < ms))
            ms = due;
        int rc = zmq_poll(item, nitems, ms);
        if (rc < 0)
            return BN_ENET;
        if (rc > 0 && (item[0].revents & ZMQ_POLLIN))
            break;
        if (rc > 0)
            return BN_TRANSPORT_FD;     /* only the watched descriptor */
        if (timeout_ms >= 0 && bn_now() >= deadline) {
            s_flush_due(t);
            return BN_ETIMEOUT;
        }
    }
    bn_msg_t *m = calloc(1, sizeof *m);
    if (!m)
        return BN_ENOMEM;
    m->auth = BN_AUTH_NONE;
    int rc = s_read_message(t, m);
    if (rc != BN_OK) {
        bn_msg_destroy(&m);
        return rc;
    }
    *msg = m;
    return BN_OK;
}

void bn_transport_watch(bn_transport_t *t, int fd)
{
    t->watch_fd = fd;
}

void bn_transport_pump(bn_transport_t *t)
{
    s_flush_due(t);
}

void bn_transport_drain(bn_transport_t *t, volatile sig_atomic_t *stop)
{
    while (bn_fault_held(t->fault) > 0) {
        if (stop && *stop)
            return;
        int ms = bn_fault_next_due_ms(t->fault, bn_now());
        if (ms > 100)
            ms = 100;           /* so that a stop request is seen promptly */
        if (ms > 0) {
            struct timespec ts = { 0, (long) ms * 1000000L };
            nanosleep(&ts, NULL);
        }
        s_flush_due(t);
    }
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
