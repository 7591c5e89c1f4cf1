/*  monitor_forge.c -- sends hand-made REPORTs to a swarm's monitor (a test tool).
 *
 *      monitor_forge --swarm FILE [--key KEYFILE] [--linger MS] MSG...
 *
 *  Every MSG is KIND:NODE:EPOCH (epoch 1-based, as in summary.json) and is
 *  sent in order to the monitor endpoint of FILE, with the CURVE key of
 *  KEYFILE when given (so a listed member can send reports in another
 *  member's name).  What a report must say -- model size, R, roles,
 *  configuration fingerprint -- is worked out from FILE like the monitor
 *  does.  KINDs:
 *      genuine   a valid report (model: every value 0.01 * (node + 1))
 *      tiny      as genuine, with a 1-float model (header dim 1)
 *      nantime   as genuine, with t_epoch NaN
 *      role      as genuine, with the honest flag flipped
 *      big       one frame of EPOCH megabytes as the model (NODE's header)
 *  Exit 0 when every message was queued and flushed within the linger time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "model.h"
#include "options.h"
#include "roles.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"

typedef struct {
    bn_swarm_t   swarm;
    bn_options_t opt;
    uint32_t     R;
    size_t       dim;
    bool        *is_byz;
} s_ctx_t;

static int s_load(s_ctx_t *c, const char *path)
{
    char err[512];
    if (bn_swarm_load(&c->swarm, path, err, sizeof err) != BN_OK)
        goto fail;
    bn_options_default(&c->opt);
    for (uint32_t i = 0; i < c->swarm.n_options; i++)
        if (bn_options_set(&c->opt, c->swarm.option_names[i], c->swarm.option_values[i], err,
                           sizeof err) != BN_OK)
            goto fail;
    if (bn_options_finish(&c->opt, c->swarm.n, err, sizeof err) != BN_OK)
        goto fail;
    bn_model_t *m = bn_model_new(c->opt.model, 1);
    c->dim = bn_model_dim(m);
    bn_model_destroy(&m);
    c->R = bn_schedule_rounds_per_epoch(c->opt.train_size, c->swarm.n, c->opt.batch,
                                        c->opt.local_steps);
    c->is_byz = calloc(c->swarm.n, sizeof *c->is_byz);
    if (!c->is_byz || bn_roles_byzantine(c->opt.seed, c->swarm.n, c->opt.byzantine, c->is_byz))
        return 1;
    return 0;
fail:
    fprintf(stderr, "monitor_forge: %s\n", err);
    return 1;
}

static int s_send(const s_ctx_t *c, bn_transport_t *tr, const char *kind, uint32_t node,
                  uint32_t epoch)
{
    bool honest = !c->is_byz[node];
    if (!strcmp(kind, "role"))
        honest = !honest;
    bn_wire_header_t h = { .version = BN_WIRE_VERSION, .kind = BN_MSG_REPORT,
                           .swarm_id = c->swarm.swarm_id, .sender = node, .epoch = epoch,
                           .round = (uint64_t) (epoch + 1) * c->R, .topology = 0,
                           .config = bn_options_fingerprint(&c->opt),
                           .dtype = BN_DTYPE_F32, .dim = honest ? (uint32_t) c->dim : 0,
                           .origin = node };
    bn_report_t r;
    memset(&r, 0, sizeof r);
    r.node = node;
    r.epoch = epoch;
    r.n_nodes = c->swarm.n;
    r.honest = honest;
    r.final = epoch + 1 == c->opt.epochs;
    snprintf(r.attack, sizeof r.attack, "%s", honest ? "none" : "forged");
    r.accuracy = honest ? 0.99 : NAN;
    r.test_loss = honest ? 0.01 : NAN;
    r.train_loss = 0.01;
    r.rounds = c->R;
    r.t_epoch = !strcmp(kind, "nantime") ? NAN : 1.0;
    r.config_fp = bn_options_fingerprint(&c->opt);
    float *w = calloc(c->swarm.n, sizeof *w);
    for (uint32_t j = 0; j < c->swarm.n; j++)
        w[j] = 1.0f / (float) c->swarm.n;
    r.weight = w;
    size_t plen = honest ? c->dim * sizeof(float) : 0;
    if (!strcmp(kind, "tiny")) {
        h.dim = 1;
        plen = 4;
    } else if (!strcmp(kind, "big")) {
        plen = (size_t) epoch << 20;
        h.epoch = 0;
        h.round = c->R;
        r.epoch = 0;
    }
    msgpack_sbuffer sb;
    bn_report_encode(&r, &sb);
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    void *bytes = NULL;
    bn_buf_t *payload = bn_buf_new(plen, &bytes);
    float v = 0.01f * (float) (node + 1);
    for (size_t k = 0; payload && k + 4 <= plen; k += 4)
        memcpy((char *) bytes + k, &v, 4);
    int rc = payload ? bn_transport_send(tr, BN_PEER_MONITOR, hb, hlen, sb.data, sb.size, payload)
                     : BN_ENOMEM;
    bn_buf_release(&payload);
    msgpack_sbuffer_destroy(&sb);
    free(w);
    if (rc != BN_OK)
        fprintf(stderr, "monitor_forge: %s:%u:%u not queued (%s)\n", kind, node, epoch + 1,
                bn_strerror(rc));
    return rc == BN_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *swarm = NULL, *key_path = NULL;
    int linger = 10000, first = 1;
    for (; first + 1 < argc && !strncmp(argv[first], "--", 2); first += 2) {
        if (!strcmp(argv[first], "--swarm"))
            swarm = argv[first + 1];
        else if (!strcmp(argv[first], "--key"))
            key_path = argv[first + 1];
        else if (!strcmp(argv[first], "--linger"))
            linger = atoi(argv[first + 1]);
    }
    if (!swarm || first >= argc) {
        fprintf(stderr, "usage: monitor_forge --swarm FILE [--key KEYFILE] KIND:NODE:EPOCH...\n");
        return 2;
    }
    s_ctx_t c;
    memset(&c, 0, sizeof c);
    if (s_load(&c, swarm))
        return 1;
    char key[BN_KEY_Z85_LEN + 1], err[512];
    bn_transport_opts_t to;
    bn_transport_opts_default(&to);
    to.bind = false;
    to.linger_ms = linger;
    if (key_path) {
        if (bn_key_read(key_path, key, err, sizeof err) != BN_OK) {
            fprintf(stderr, "monitor_forge: %s\n", err);
            return 1;
        }
        to.secret_key = key;
    }
    bn_transport_t *tr = bn_transport_new(&c.swarm, UINT32_MAX, NULL, &to, err, sizeof err);
    if (!tr) {
        fprintf(stderr, "monitor_forge: %s\n", err);
        return 1;
    }
    int bad = 0;
    for (int i = first; i < argc; i++) {
        char kind[16];
        unsigned node, epoch;
        if (sscanf(argv[i], "%15[a-z]:%u:%u", kind, &node, &epoch) != 3 || node >= c.swarm.n
            || epoch < 1 || (strcmp(kind, "big") && epoch > c.opt.epochs)) {
            fprintf(stderr, "monitor_forge: bad message '%s'\n", argv[i]);
            bad = 1;
            continue;
        }
        bad |= s_send(&c, tr, kind, node, strcmp(kind, "big") ? epoch - 1 : epoch);
    }
    bn_transport_destroy(&tr);   /* waits up to --linger ms for the queue to drain */
    free(c.is_byz);
    bn_swarm_free(&c.swarm);
    return bad;
}
