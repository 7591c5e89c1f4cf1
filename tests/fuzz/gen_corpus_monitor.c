/*  gen_corpus_monitor.c -- seed corpora of fuzz_report and fuzz_monitor.
 *
 *  Usage: gen_corpus_monitor REPORT_DIR MONITOR_DIR   (both must exist)
 *
 *  fuzz_report: valid metrics frames (an honest report, an attacker's with
 *  NaN accuracy and no weights, every counter at its maximum).
 *  fuzz_monitor (layout in fuzz_monitor.c): one genuine report; a whole
 *  epoch; the whole run; an attacker's early last-epoch report and the
 *  clock running past every deadline; a journal written by a real monitor
 *  followed by the next epoch's reports.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "monitor.h"
#include "roles.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"
#include "fuzz_monitor_swarm.h"

typedef struct {
    uint8_t *p;
    size_t   len, cap;
} s_buf_t;

static void s_put(s_buf_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void s_u16(s_buf_t *b, size_t v)
{
    uint8_t l[2] = { (uint8_t) (v & 0xff), (uint8_t) (v >> 8) };
    s_put(b, l, 2);
}

static int s_save(const char *dir, const char *name, const s_buf_t *b)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(b->p, 1, b->len, f) == b->len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static uint64_t s_swarm_id, s_config;
static bool s_byz[S_FUZZ_N];

static void s_report(bn_report_t *r, float *w, uint32_t node, uint32_t epoch)
{
    memset(r, 0, sizeof *r);
    r->node = node;
    r->epoch = epoch;
    r->n_nodes = S_FUZZ_N;
    r->honest = !s_byz[node];
    r->final = epoch + 1 == S_FUZZ_E;
    snprintf(r->attack, sizeof r->attack, "%s", r->honest ? "none" : "dlie");
    r->accuracy = r->honest ? 0.5 + 0.1 * node : NAN;
    r->test_loss = r->honest ? 1.0 : NAN;
    r->train_loss = 1.5;
    r->rounds = 15;
    r->t_epoch = 3.0;
    r->config_fp = s_config;
    r->degree = 2;
    for (int j = 0; j < S_FUZZ_N; j++)
        w[j] = 0.25f;
    r->weight = w;
}

/* Node's genuine report of epoch (s_report, into r and w) and its wire
 * header (round (epoch + 1) * 15, a model's dim when honest), encoded into
 * hb[*hlen] and sb (initialised here, destroyed by the caller). */
static void s_report_msg(uint32_t node, uint32_t epoch, bn_report_t *r, float *w, uint8_t *hb,
                         size_t *hlen, msgpack_sbuffer *sb)
{
    s_report(r, w, node, epoch);
    bn_wire_header_t h = { .version = BN_WIRE_VERSION, .kind = BN_MSG_REPORT,
                           .swarm_id = s_swarm_id, .sender = node, .epoch = epoch,
                           .round = (uint64_t) (epoch + 1) * 15, .config = s_config,
                           .dtype = BN_DTYPE_F32, .dim = r->honest ? 7850 : 0, .origin = node };
    bn_wire_encode(&h, hb, BN_WIRE_HEADER_ENCODED_MAX, hlen);
    bn_report_encode(r, sb);
}

/* One record: 3 frames, the model generated (flag bit 3) for honest nodes. */
static void s_record(s_buf_t *b, uint32_t node, uint32_t epoch, int clock)
{
    bn_report_t r;
    float w[S_FUZZ_N];
    uint8_t hb[BN_WIRE_HEADER_ENCODED_MAX];
    size_t hlen = 0;
    msgpack_sbuffer sb;
    s_report_msg(node, epoch, &r, w, hb, &hlen, &sb);
    uint8_t flags = (uint8_t) (2 | (r.honest ? 8 : 0) | (clock << 4));
    s_put(b, &flags, 1);
    s_u16(b, hlen);
    s_put(b, hb, hlen);
    s_u16(b, sb.size);
    s_put(b, sb.data, sb.size);
    s_u16(b, 0);
    if (r.honest) {
        uint8_t v = (uint8_t) (10 + node);
        s_put(b, &v, 1);
    }
    msgpack_sbuffer_destroy(&sb);
}

static int s_report_seeds(const char *dir)
{
    int rc = 0;
    bn_report_t r;
    float w[S_FUZZ_N];
    msgpack_sbuffer sb;
    s_buf_t b = { 0 };
    const char *names[3] = { "report-honest", "report-attacker", "report-max" };
    for (int k = 0; k < 3; k++) {
        s_report(&r, w, k == 1 ? 0 : 1, 1);
        if (k == 1) {
            r.honest = false;
            r.weight = NULL;
        }
        if (k == 2) {
            r.bytes_sent = r.missing = r.config_fp = UINT64_MAX;
            r.node = r.epoch = UINT32_MAX;
            for (int i = 0; i < BN_DROP_COUNT; i++)
                r.drops[i] = UINT64_MAX - (uint64_t) i;
        }
        bn_report_encode(&r, &sb);
        b.len = 0;
        s_put(&b, sb.data, sb.size);
        rc |= s_save(dir, names[k], &b);
        msgpack_sbuffer_destroy(&sb);
    }
    free(b.p);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s REPORT_DIR MONITOR_DIR\n", argv[0]);
        return 2;
    }
    char tmp[] = "/tmp/bn-gen-corpus.XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    const char *swarm = s_fuzz_swarm_write(tmp);
    bn_swarm_t sw;
    char err[512], out[600];
    if (!swarm || bn_swarm_load(&sw, swarm, err, sizeof err) != BN_OK)
        return 1;
    s_swarm_id = sw.swarm_id;
    bn_swarm_free(&sw);
    snprintf(out, sizeof out, "%s/out", tmp);
    bn_monitor_opts_t o = { .swarm_path = swarm, .out_dir = out, .grace = S_FUZZ_GRACE, .quiet = true };
    bn_monitor_t *m = bn_monitor_new(&o, S_FUZZ_T0, err, sizeof err);
    if (!m)
        return 1;
    s_config = bn_monitor_config_fp(m);
    bn_roles_byzantine(7, S_FUZZ_N, 1, s_byz);
    uint32_t attacker = 0;
    for (uint32_t i = 0; i < S_FUZZ_N; i++)
        if (s_byz[i])
            attacker = i;
    int rc = s_report_seeds(argv[1]);
    s_buf_t b = { 0 };
    /* one genuine report; a whole epoch; the whole run */
    for (int seed = 0; seed < 3; seed++) {
        b.len = 0;
        s_u16(&b, 0);
        uint32_t epochs = seed == 2 ? S_FUZZ_E : 1, nodes = seed == 0 ? 1 : S_FUZZ_N;
        for (uint32_t e = 0; e < epochs; e++)
            for (uint32_t i = 0; i < nodes; i++)
                s_record(&b, seed == 0 ? (attacker + 1) % S_FUZZ_N : i, e, 1);
        static const char *names[3] = { "monitor-one", "monitor-epoch", "monitor-run" };
        rc |= s_save(argv[2], names[seed], &b);
    }
    /* the attacker's last epoch first, then the clock past every deadline */
    b.len = 0;
    s_u16(&b, 0);
    s_record(&b, attacker, S_FUZZ_E - 1, 0);
    for (int k = 0; k < 20; k++) {
        uint8_t junk[3] = { 0xf0, 0, 0 };   /* 1 frame of 0 bytes, clock + 7.5 s */
        s_put(&b, junk, 3);
    }
    rc |= s_save(argv[2], "monitor-deadlines", &b);
    /* a real monitor's journal after epoch 1, then epoch 2's reports */
    for (uint32_t i = 0; i < S_FUZZ_N; i++) {
        /* feed the same reports to m, so that it writes its journal */
        bn_report_t r;
        float w[S_FUZZ_N];
        uint8_t hb[BN_WIRE_HEADER_ENCODED_MAX];
        size_t hlen = 0;
        msgpack_sbuffer sb;
        s_report_msg(i, 0, &r, w, hb, &hlen, &sb);
        static float x[7850];
        for (int k = 0; k < 7850; k++)
            x[k] = 0.01f * (float) (10 + i);
        bn_monitor_frame_t fr[3] = { { hb, hlen }, { sb.data, sb.size },
                                     { x, r.honest ? sizeof x : 0 } };
        if (bn_monitor_accept(m, fr, 3, BN_AUTH_NONE, S_FUZZ_T0 + 1) != BN_MDROP_NONE) {
            fprintf(stderr, "gen_corpus_monitor: the journal seed's report %u was dropped\n", i);
            rc = 1;
        }
        msgpack_sbuffer_destroy(&sb);
    }
    bn_monitor_destroy(&m);
    char jpath[700];
    snprintf(jpath, sizeof jpath, "%s/monitor.journal", out);
    FILE *f = fopen(jpath, "rb");
    static uint8_t jbuf[1 << 16];
    size_t jlen = f ? fread(jbuf, 1, sizeof jbuf, f) : 0;
    if (f)
        fclose(f);
    b.len = 0;
    s_u16(&b, jlen);
    s_put(&b, jbuf, jlen);
    for (uint32_t i = 0; i < S_FUZZ_N; i++)
        s_record(&b, i, 1, 1);
    rc |= s_save(argv[2], "monitor-journal", &b);
    free(b.p);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    rc |= system(cmd);
    return rc ? 1 : 0;
}
