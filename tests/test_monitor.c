/*  test_monitor.c -- the monitor's message path without sockets.
 *
 *  A swarm file of 4 nodes (logreg, 3 epochs, one Byzantine node drawn from
 *  the seed), and REPORTs built here byte by byte and handed to
 *  bn_monitor_accept() with an explicit clock, so deadlines are tested
 *  without sleeping.  Covers: what the monitor knows from the swarm file
 *  alone, one case per drop reason, the epoch-closing rules (an early
 *  last-epoch report closes nothing, a deadline does), consensus error null
 *  without an honest model, a restarted monitor rebuilding its summary from
 *  its journal, and exiting when every node finished or failed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "monitor.h"
#include "options.h"
#include "roles.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"
#include "fixture.h"

#define N     4
#define E     3
#define DIM   7850          /* logreg: 784 * 10 + 10 */
#define R     15            /* ceil(ceil(6000 / 4) / 100) */
#define T0    1000.0        /* the monitor's start on the test clock */
#define GRACE 5.0
/* Epoch budget: R round timeouts (1 s) + grace. */
#define BUDGET (R * 1.0 + GRACE)

static char s_dir[256];
static char s_out[300];
static char s_swarm_path[300];
static uint64_t s_swarm_id;
static bool s_byz[N];
static uint32_t s_byz_id;
static float s_x[DIM];

static void s_write_swarm(const char *name)
{
    FILE *f = fopen(s_swarm_path, "w");
    assert_non_null(f);
    fprintf(f, "swarm %s\nmonitor ipc://%s/m\n", name, s_dir);
    fprintf(f, "option model logreg\noption epochs %d\noption byzantine 1\noption seed 7\n"
               "option round-timeout 1000\noption train-size 6000\noption batch 100\n", E);
    for (int i = 0; i < N; i++)
        fprintf(f, "node %d ipc://%s/%d\n", i, s_dir, i);
    fclose(f);
    bn_swarm_t sw;
    char err[256];
    assert_int_equal(bn_swarm_load(&sw, s_swarm_path, err, sizeof err), BN_OK);
    s_swarm_id = sw.swarm_id;
    bn_swarm_free(&sw);
}

static int s_setup(void **state)
{
    (void) state;
    assert_int_equal(bn_fx_tmpdir(s_dir, sizeof s_dir, "monitor"), 0);
    snprintf(s_out, sizeof s_out, "%s/out", s_dir);
    snprintf(s_swarm_path, sizeof s_swarm_path, "%s/swarm.txt", s_dir);
    s_write_swarm("monitor-test");
    assert_int_equal(bn_roles_byzantine(7, N, 1, s_byz), BN_OK);
    for (uint32_t i = 0; i < N; i++)
        if (s_byz[i])
            s_byz_id = i;
    return 0;
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

static bn_monitor_t *s_new(void)
{
    bn_monitor_opts_t o = { .swarm_path = s_swarm_path, .out_dir = s_out, .grace = GRACE,
                            .quiet = true };
    char err[512] = "";
    bn_monitor_t *m = bn_monitor_new(&o, T0, err, sizeof err);
    if (!m)
        fail_msg("bn_monitor_new: %s", err);
    return m;
}

static void s_fresh(void)
{
    assert_int_equal(bn_fx_rmtree(s_out), 0);
}

/* ---- building REPORTs ---------------------------------------------------- */

typedef struct {
    bn_wire_header_t h;
    bn_report_t      r;
    float            w[N];
    size_t           plen;      /* payload bytes of s_x */
    uint32_t         auth;
} s_msg_t;

static void s_msg(s_msg_t *q, const bn_monitor_t *m, uint32_t node, uint32_t epoch)
{
    memset(q, 0, sizeof *q);
    bool honest = !s_byz[node];
    q->h = (bn_wire_header_t) { .version = BN_WIRE_VERSION, .kind = BN_MSG_REPORT,
                                .swarm_id = s_swarm_id, .sender = node, .epoch = epoch,
                                .round = (uint64_t) (epoch + 1) * R, .topology = 0x1234,
                                .config = bn_monitor_config_fp(m), .dtype = BN_DTYPE_F32,
                                .dim = honest ? DIM : 0, .origin = node };
    bn_report_t *r = &q->r;
    r->node = node;
    r->epoch = epoch;
    r->n_nodes = N;
    r->honest = honest;
    r->final = epoch + 1 == E;
    snprintf(r->attack, sizeof r->attack, "%s", honest ? "none" : "dlie");
    r->accuracy = honest ? 0.5 + 0.1 * node : NAN;
    r->test_loss = honest ? 1.0 : NAN;
    r->train_loss = 1.5;
    r->rounds = R;
    r->t_epoch = 3.0;
    r->t_wait = 1.5;
    r->topology_fp = 0x1234;
    r->config_fp = bn_monitor_config_fp(m);
    r->degree = 2;
    for (int j = 0; j < N; j++)
        q->w[j] = 0.25f;
    r->weight = q->w;
    q->plen = honest ? DIM * sizeof(float) : 0;
    q->auth = BN_AUTH_NONE;
}

/* Honest node i's model: every coordinate = 1 + i (a hand-computable eq. 3). */
static void s_model_of(uint32_t i)
{
    for (int k = 0; k < DIM; k++)
        s_x[k] = 1.0f + (float) i;
}

static bn_monitor_drop_t s_send_frames(bn_monitor_t *m, const s_msg_t *q, int n_frames,
                                       const void *metrics, size_t mlen, double now)
{
    uint8_t hb[BN_WIRE_HEADER_ENCODED_MAX];
    size_t hlen = 0;
    assert_int_equal(bn_wire_encode(&q->h, hb, sizeof hb, &hlen), BN_OK);
    bn_monitor_frame_t fr[3] = { { hb, hlen }, { metrics, mlen }, { s_x, q->plen } };
    return bn_monitor_accept(m, fr, n_frames, q->auth, now);
}

static bn_monitor_drop_t s_send(bn_monitor_t *m, const s_msg_t *q, double now)
{
    msgpack_sbuffer sb;
    bn_report_encode(&q->r, &sb);
    bn_monitor_drop_t why = s_send_frames(m, q, 3, sb.data, sb.size, now);
    msgpack_sbuffer_destroy(&sb);
    return why;
}

/* The genuine report of node i for epoch e. */
static bn_monitor_drop_t s_genuine(bn_monitor_t *m, uint32_t i, uint32_t e, double now)
{
    s_msg_t q;
    s_msg(&q, m, i, e);
    s_model_of(i);
    return s_send(m, &q, now);
}

static char *s_slurp(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", s_out, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* ---- tests --------------------------------------------------------------- */

/* Model size, R and the configuration fingerprint come from the swarm file. */
static void test_knows_the_swarm_from_its_file(void **state)
{
    (void) state;
    s_fresh();
    bn_monitor_t *m = s_new();
    assert_int_equal(bn_monitor_model_dim(m), DIM);
    assert_int_equal(bn_monitor_rounds_per_epoch(m), R);
    bn_options_t o;
    bn_options_default(&o);
    char err[256];
    assert_int_equal(bn_options_set(&o, "model", "logreg", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_set(&o, "epochs", "3", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_set(&o, "byzantine", "1", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_set(&o, "seed", "7", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_set(&o, "round-timeout", "1000", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_set(&o, "train-size", "6000", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_set(&o, "batch", "100", err, sizeof err), BN_OK);
    assert_int_equal(bn_options_finish(&o, N, err, sizeof err), BN_OK);
    assert_int_equal(bn_monitor_config_fp(m), bn_options_fingerprint(&o));
    /* a forged 1-float model first changes nothing: the size is known */
    s_msg_t q;
    s_msg(&q, m, s_byz_id == 0 ? 1 : 0, 0);
    q.h.dim = 1;
    q.plen = 4;
    assert_int_equal(s_send(m, &q, T0), BN_MDROP_DIM);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(s_genuine(m, i, 0, T0 + 1), BN_MDROP_NONE);
    assert_true(bn_monitor_epoch(m, 0)->closed);
    assert_int_equal(bn_monitor_epoch(m, 0)->honest_reported, N - 1);
    assert_int_equal(bn_monitor_epoch(m, 0)->models, N - 1);
    bn_monitor_destroy(&m);
    assert_null(m);
}

typedef void (*s_spoil_fn)(s_msg_t *q);

static void s_sp_sender(s_msg_t *q) { q->h.sender = N; q->h.origin = N; }
static void s_sp_origin(s_msg_t *q) { q->h.origin = (q->h.sender + 1) % N; }
static void s_sp_kind(s_msg_t *q) { q->h.kind = BN_MSG_MODEL; }
static void s_sp_swarm(s_msg_t *q) { q->h.swarm_id ^= 1; }
static void s_sp_version(s_msg_t *q) { q->h.version = BN_WIRE_VERSION + 1; }
static void s_sp_epoch(s_msg_t *q) { q->h.epoch = E; q->r.epoch = E; }
static void s_sp_round(s_msg_t *q) { q->h.round = (uint64_t) (q->h.epoch + 2) * R; }
static void s_sp_dtype(s_msg_t *q) { q->h.dtype = 2; }
static void s_sp_node(s_msg_t *q) { q->r.node = (q->r.node + 1) % N; }
static void s_sp_mepoch(s_msg_t *q) { q->r.epoch = q->h.epoch + 1; }
static void s_sp_topo(s_msg_t *q) { q->r.topology_fp ^= 1; }
static void s_sp_config(s_msg_t *q) { q->r.config_fp ^= 1; }
static void s_sp_hconfig(s_msg_t *q) { q->h.config ^= 1; }   /* the header's "c" alone */
static void s_sp_role(s_msg_t *q) { q->r.honest = !q->r.honest; }
static void s_sp_nnodes(s_msg_t *q) { q->r.n_nodes = N - 1; }
static void s_sp_rounds(s_msg_t *q) { q->r.rounds = R + 1; }
static void s_sp_acc(s_msg_t *q) { q->r.accuracy = 1.5; }
static void s_sp_final(s_msg_t *q) { q->r.final = true; }
static void s_sp_degree(s_msg_t *q) { q->r.degree = N; }
static void s_sp_time(s_msg_t *q) { q->r.t_wait = -1; }
static void s_sp_noweight(s_msg_t *q) { q->r.weight = NULL; }
static void s_sp_bigweight(s_msg_t *q) { q->w[1] = 2.0f; }
static void s_sp_empty(s_msg_t *q) { q->plen = 0; }
static void s_sp_dim(s_msg_t *q) { q->h.dim = DIM - 1; q->plen = (DIM - 1) * 4; }
static void s_sp_hdrdim(s_msg_t *q) { q->h.dim = DIM - 1; }
static void s_sp_auth(s_msg_t *q) { q->auth = (q->h.sender + 1) % N; }
static void s_sp_nan(s_msg_t *q) { q->r.t_epoch = NAN; }

/* One report spoiled in one way is dropped under its reason; the genuine
 * report of the same (node, epoch) is accepted afterwards. */
static void test_one_reason_per_bad_field(void **state)
{
    (void) state;
    const struct { s_spoil_fn spoil; bn_monitor_drop_t why; } cases[] = {
        { s_sp_sender, BN_MDROP_SENDER }, { s_sp_origin, BN_MDROP_SENDER },
        { s_sp_kind, BN_MDROP_KIND }, { s_sp_swarm, BN_MDROP_SWARM },
        { s_sp_version, BN_MDROP_VERSION }, { s_sp_epoch, BN_MDROP_EPOCH },
        { s_sp_round, BN_MDROP_EPOCH }, { s_sp_dtype, BN_MDROP_DTYPE },
        { s_sp_node, BN_MDROP_MISMATCH }, { s_sp_mepoch, BN_MDROP_MISMATCH },
        { s_sp_topo, BN_MDROP_MISMATCH }, { s_sp_config, BN_MDROP_CONFIG },
        { s_sp_hconfig, BN_MDROP_CONFIG },
        { s_sp_role, BN_MDROP_ROLE }, { s_sp_nnodes, BN_MDROP_RANGE },
        { s_sp_rounds, BN_MDROP_RANGE }, { s_sp_acc, BN_MDROP_RANGE },
        { s_sp_final, BN_MDROP_RANGE }, { s_sp_degree, BN_MDROP_RANGE },
        { s_sp_time, BN_MDROP_RANGE }, { s_sp_noweight, BN_MDROP_WEIGHT },
        { s_sp_bigweight, BN_MDROP_WEIGHT }, { s_sp_empty, BN_MDROP_EMPTY },
        { s_sp_dim, BN_MDROP_DIM }, { s_sp_hdrdim, BN_MDROP_DIM },
        { s_sp_auth, BN_MDROP_AUTH }, { s_sp_nan, BN_MDROP_METRICS },
    };
    s_fresh();
    bn_monitor_t *m = s_new();
    uint32_t h = s_byz_id == 0 ? 1 : 0;   /* an honest node */
    uint64_t expect[BN_MDROP_COUNT] = { 0 };
    for (size_t c = 0; c < BN_ARRAY_LEN(cases); c++) {
        s_msg_t q;
        s_msg(&q, m, h, 0);
        s_model_of(h);
        cases[c].spoil(&q);
        bn_monitor_drop_t got = s_send(m, &q, T0);
        if (got != cases[c].why)
            fail_msg("case %zu: dropped as %s, expected %s", c, bn_monitor_drop_name(got),
                     bn_monitor_drop_name(cases[c].why));
        expect[cases[c].why]++;
    }
    /* frames: 2 frames, 4 frames; size: an oversized metrics frame */
    s_msg_t q;
    s_msg(&q, m, h, 0);
    assert_int_equal(s_send_frames(m, &q, 2, "x", 1, T0), BN_MDROP_FRAMES);
    assert_int_equal(s_send_frames(m, &q, 4, "x", 1, T0), BN_MDROP_FRAMES);
    expect[BN_MDROP_FRAMES] += 2;
    char *big = calloc(1, BN_REPORT_MAX_BYTES + 1);
    assert_int_equal(s_send_frames(m, &q, 3, big, BN_REPORT_MAX_BYTES + 1, T0), BN_MDROP_SIZE);
    free(big);
    q.plen = DIM * 4 + 4;   /* one float more than the model */
    float *bigx = calloc(DIM + 1, sizeof(float));
    uint8_t hb[BN_WIRE_HEADER_ENCODED_MAX];
    size_t hlen;
    assert_int_equal(bn_wire_encode(&q.h, hb, sizeof hb, &hlen), BN_OK);
    bn_monitor_frame_t fr[3] = { { hb, hlen }, { "x", 1 }, { bigx, (DIM + 1) * 4 } };
    assert_int_equal(bn_monitor_accept(m, fr, 3, BN_AUTH_NONE, T0), BN_MDROP_SIZE);
    free(bigx);
    expect[BN_MDROP_SIZE] += 2;
    /* garbage header, garbage metrics */
    fr[0] = (bn_monitor_frame_t) { "\x81\xa1v", 3 };
    fr[2].size = 0;
    assert_int_equal(bn_monitor_accept(m, fr, 3, BN_AUTH_NONE, T0), BN_MDROP_HEADER);
    s_msg(&q, m, h, 0);
    assert_int_equal(s_send_frames(m, &q, 3, "\xc0", 1, T0), BN_MDROP_METRICS);
    expect[BN_MDROP_HEADER]++;
    expect[BN_MDROP_METRICS]++;
    /* a Byzantine report with a model */
    s_msg(&q, m, s_byz_id, 0);
    q.plen = DIM * 4;
    assert_int_equal(s_send(m, &q, T0), BN_MDROP_DIM);
    expect[BN_MDROP_DIM]++;
    /* nothing was accepted so far; now the genuine one, then its duplicate */
    assert_int_equal(s_genuine(m, h, 0, T0), BN_MDROP_NONE);
    assert_int_equal(s_genuine(m, h, 0, T0), BN_MDROP_DUPLICATE);
    expect[BN_MDROP_DUPLICATE]++;
    const uint64_t *d = bn_monitor_drops(m);
    for (int k = 0; k < BN_MDROP_COUNT; k++)
        if (d[k] != expect[k])
            fail_msg("drops[%s] = %llu, expected %llu", bn_monitor_drop_name(k),
                     (unsigned long long) d[k], (unsigned long long) expect[k]);
    bn_monitor_destroy(&m);
}

/* A node started with other swarm-wide options: its header's "c" differs
 * (its metrics' copy too, or forged to match).  Either way every report is
 * dropped as `config`, counted in summary.json, and enters no epoch. */
static void test_other_configuration_is_dropped(void **state)
{
    (void) state;
    s_fresh();
    bn_monitor_t *m = s_new();
    char err[256];
    uint64_t other = bn_monitor_config_fp(m) ^ 0x8000000000000001ull;
    for (uint32_t i = 0; i < N; i++) {
        s_msg_t q;
        s_msg(&q, m, i, 0);
        s_model_of(i);
        q.h.config = other;
        if (i % 2)
            q.r.config_fp = other;
        assert_int_equal(s_send(m, &q, T0 + 1), BN_MDROP_CONFIG);
    }
    assert_int_equal(bn_monitor_drops(m)[BN_MDROP_CONFIG], N);
    assert_false(bn_monitor_epoch(m, 0)->closed);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(s_genuine(m, i, 0, T0 + 2), BN_MDROP_NONE);
    assert_true(bn_monitor_epoch(m, 0)->closed);
    assert_int_equal(bn_monitor_epoch(m, 0)->honest_reported, N - 1);
    assert_int_equal(bn_monitor_finish(m, T0 + 3, true, err, sizeof err), BN_OK);
    const char *s = s_slurp("summary.json");
    assert_non_null(s);
    char want[64];
    snprintf(want, sizeof want, "\"config\": %d", N);
    assert_non_null(strstr(strstr(s, "\"report_drops\""), want));
    bn_monitor_destroy(&m);
}

/* CURVE: a listed member's report claiming another id is `auth`; a report
 * without an authenticated id at all is `auth` too. */
static void test_curve_requires_the_authenticated_id(void **state)
{
    (void) state;
    FILE *f = fopen(s_swarm_path, "w");
    assert_non_null(f);
    const char *key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";   /* any 40 Z85 chars */
    fprintf(f, "swarm monitor-test\nmonitor ipc://%s/m %s\n", s_dir, key);
    fprintf(f, "option model logreg\noption epochs %d\noption byzantine 1\noption seed 7\n"
               "option round-timeout 1000\noption train-size 6000\noption batch 100\n", E);
    for (int i = 0; i < N; i++)
        fprintf(f, "node %d ipc://%s/%d %s\n", i, s_dir, i, key);
    fclose(f);
    s_fresh();
    bn_monitor_t *m = s_new();
    uint32_t h = s_byz_id == 0 ? 1 : 0;
    s_msg_t q;
    s_msg(&q, m, h, 0);
    s_model_of(h);
    assert_int_equal(s_send(m, &q, T0), BN_MDROP_AUTH);          /* no id */
    q.auth = s_byz_id;
    assert_int_equal(s_send(m, &q, T0), BN_MDROP_AUTH);          /* the attacker's key */
    q.auth = h;
    assert_int_equal(s_send(m, &q, T0), BN_MDROP_NONE);
    bn_monitor_destroy(&m);
    s_write_swarm("monitor-test");
}

/* An early report of the last epoch closes nothing; an epoch closes when
 * every honest node reported it, or at the deadline of those that did not. */
static void test_epochs_close_by_reports_or_deadline(void **state)
{
    (void) state;
    s_fresh();
    bn_monitor_t *m = s_new();
    char err[256];
    /* the attacker runs ahead and reports the last epoch at once */
    s_msg_t q;
    s_msg(&q, m, s_byz_id, E - 1);
    assert_int_equal(s_send(m, &q, T0 + 1), BN_MDROP_NONE);
    /* long after (but before any deadline) nothing is closed */
    double t = T0 + BUDGET;   /* < first deadline T0 + 2 + BUDGET */
    assert_int_equal(bn_monitor_tick(m, t, err, sizeof err), BN_OK);
    for (uint32_t e = 0; e < E; e++)
        assert_false(bn_monitor_epoch(m, e)->closed);
    /* epoch 0: all honest nodes -> closed at the last one, with eq. (3) by hand */
    for (uint32_t i = 0; i < N; i++)
        if (!s_byz[i])
            assert_int_equal(s_genuine(m, i, 0, t), BN_MDROP_NONE);
    const bn_monitor_epoch_t *ep = bn_monitor_epoch(m, 0);
    assert_true(ep->closed);
    assert_int_equal(ep->honest_reported, N - 1);
    double c[N - 1];
    int k = 0;
    for (uint32_t i = 0; i < N; i++)
        if (!s_byz[i])
            c[k++] = 1.0 + i;
    double mean = (c[0] + c[1] + c[2]) / 3, dev = 0;
    for (int j = 0; j < 3; j++)
        dev += (c[j] - mean) * (c[j] - mean);
    assert_float_equal(ep->consensus, dev / 3 / (mean * mean), 1e-9);
    double acc = 0;
    for (uint32_t i = 0; i < N; i++)
        if (!s_byz[i])
            acc += 0.5 + 0.1 * i;
    assert_float_equal(ep->mean_acc, acc / 3, 1e-9);
    /* epoch 1: one honest node stays silent; the epoch waits for its deadline */
    uint32_t silent = UINT32_MAX;
    for (uint32_t i = 0; i < N; i++)
        if (!s_byz[i]) {
            if (silent == UINT32_MAX)
                silent = i;
            else
                assert_int_equal(s_genuine(m, i, 1, t + 1), BN_MDROP_NONE);
        }
    /* its epoch-0 report + one budget in force: epoch 0 took the honest
     * nodes BUDGET from the start, so twice that (test_deadline_follows_the_pace) */
    double dl = bn_monitor_deadline(m, silent, 1);
    assert_float_equal(dl, t + 2 * BUDGET, 1e-9);
    assert_int_equal(bn_monitor_tick(m, dl - 0.01, err, sizeof err), BN_OK);
    assert_false(bn_monitor_epoch(m, 1)->closed);
    assert_int_equal(bn_monitor_tick(m, dl, err, sizeof err), BN_OK);
    assert_true(bn_monitor_epoch(m, 1)->closed);
    assert_int_equal(bn_monitor_epoch(m, 1)->honest_reported, N - 2);
    /* its report arrives after all: late, dropped; the attacker's are kept */
    assert_int_equal(s_genuine(m, silent, 1, dl + 1), BN_MDROP_LATE);
    s_msg(&q, m, s_byz_id, 1);
    assert_int_equal(s_send(m, &q, dl + 1), BN_MDROP_NONE);
    assert_false(bn_monitor_done(m, dl + 1));
    bn_monitor_destroy(&m);
}

/* The machine's share: the window runs from the last node's epoch start
 * (arrival - t_epoch) to the last arrival; the phases' CPU seconds of every
 * node that reported (attackers too) over wall x cores; RSS summed. */
static void test_efficiency_and_memory(void **state)
{
    (void) state;
    s_fresh();
    bn_monitor_opts_t o = { .swarm_path = s_swarm_path, .out_dir = s_out, .grace = GRACE,
                            .quiet = true, .cores = 2 };
    char err[512] = "";
    bn_monitor_t *m = bn_monitor_new(&o, T0, err, sizeof err);
    assert_non_null(m);
    /* node i: epoch of 3 s ending at T0 + 10 + i (the last starts at T0 + 10
     * with i = N - 1: window T0 + 10 .. T0 + 13, 3 s x 2 cores); CPU 0.5 +
     * 0.25 + 0.125 + 0.125 = 1 s of phases each, 1.5 s of process */
    for (uint32_t i = 0; i < N; i++) {
        s_msg_t q;
        s_msg(&q, m, i, 0);
        q.r.t_epoch = 3.0 + i;
        q.r.cpu_compute = 0.5;
        q.r.cpu_aggregate = 0.25;
        q.r.cpu_encode = 0.125;
        q.r.cpu_eval = 0.125;
        q.r.cpu_process = 1.5;
        q.r.max_rss_kb = 1024 * (10 + i);
        s_model_of(i);
        assert_int_equal(s_send(m, &q, T0 + 13 + i), BN_MDROP_NONE);
    }
    const bn_monitor_epoch_t *ep = bn_monitor_epoch(m, 0);
    assert_true(ep->closed);
    /* node i arrives at T0 + 13 + i after t_epoch 3 + i: every start is T0 + 10 */
    assert_float_equal(ep->wall, (T0 + 13 + N - 1) - (T0 + 10), 1e-9);
    assert_float_equal(ep->efficiency, N * 1.0 / (ep->wall * 2), 1e-9);
    assert_float_equal(ep->cpu_phase[0], N * 0.5, 1e-12);
    assert_float_equal(ep->cpu_nodes, N * 1.5, 1e-12);
    assert_int_equal(ep->sum_rss_kb, 1024 * (10 * N + N * (N - 1) / 2));
    assert_int_equal(ep->max_rss_kb, 1024 * (10 + N - 1));
    char *sum = s_slurp("summary.json");
    assert_non_null(sum);
    assert_non_null(strstr(sum, "\"efficiency\": "));
    assert_non_null(strstr(sum, "\"cores\": 2"));
    assert_non_null(strstr(sum, "\"max_rss_mb\": 13"));
    char *csv = s_slurp("epochs.csv");
    assert_non_null(strstr(csv, ",efficiency,wall_seconds,cores,"));
    bn_monitor_destroy(&m);
    /* a restarted monitor has the reports but not their arrival times: the
     * replayed epoch's efficiency is undefined (null), its memory is kept */
    m = bn_monitor_new(&o, T0 + 100, err, sizeof err);
    assert_non_null(m);
    ep = bn_monitor_epoch(m, 0);
    assert_true(ep->closed);
    assert_true(isnan(ep->efficiency));
    assert_int_equal(ep->sum_rss_kb, 1024 * (10 * N + N * (N - 1) / 2));
    bn_monitor_destroy(&m);
}

/* The budget in force follows the swarm's pace: R round timeouts + grace
 * while epochs are quicker than half of it, twice the slowest honest epoch
 * seen live once one is slower (a loaded machine: compute, not the round
 * timeout, sets the pace); an attacker's reports do not count.  (The cap
 * of 10 budgets needs more epochs than this swarm has: each epoch can at
 * most double the budget.) */
static void test_deadline_follows_the_pace(void **state)
{
    (void) state;
    s_fresh();
    bn_monitor_t *m = s_new();
    uint32_t h[N], nh = 0;
    for (uint32_t i = 0; i < N; i++)
        if (!s_byz[i])
            h[nh++] = i;
    /* a quick epoch 0 (3 s): the budget stays R timeouts + grace */
    assert_int_equal(s_genuine(m, h[0], 0, T0 + 3), BN_MDROP_NONE);
    assert_float_equal(bn_monitor_deadline(m, h[0], 1), T0 + 3 + BUDGET, 1e-9);
    assert_float_equal(bn_monitor_deadline(m, h[1], 0), T0 + 2 + BUDGET, 1e-9);
    /* an attacker that takes 0.9 budgets for its epoch 1 changes nothing */
    s_msg_t q;
    s_msg(&q, m, s_byz_id, 1);
    assert_int_equal(s_send(m, &q, T0 + 0.9 * BUDGET), BN_MDROP_NONE);
    assert_float_equal(bn_monitor_deadline(m, h[0], 1), T0 + 3 + BUDGET, 1e-9);
    /* an honest epoch 1 of 0.8 budgets (loaded machine): twice that, for
     * every node and epoch */
    double t1 = T0 + 3 + 0.8 * BUDGET;
    assert_int_equal(s_genuine(m, h[0], 1, t1), BN_MDROP_NONE);
    assert_float_equal(bn_monitor_deadline(m, h[0], 2), t1 + 1.6 * BUDGET, 1e-9);
    assert_float_equal(bn_monitor_deadline(m, h[1], 1), T0 + 2 + 2 * 1.6 * BUDGET, 1e-9);
    /* a node whose first report (epoch 0) comes after 1.5 budgets, inside
     * the longer deadline: the pace is now 1.5 budgets */
    double t2 = T0 + 1.5 * BUDGET;
    assert_int_equal(s_genuine(m, h[1], 0, t2), BN_MDROP_NONE);
    assert_float_equal(bn_monitor_deadline(m, h[1], 1), t2 + 3 * BUDGET, 1e-9);
    bn_monitor_destroy(&m);
}

/* No honest model in an epoch: consensus error is null, not 0; the monitor
 * is done when every node finished or failed, by the deadlines alone. */
static void test_null_consensus_and_done_by_deadline(void **state)
{
    (void) state;
    s_fresh();
    bn_monitor_t *m = s_new();
    char err[256];
    for (uint32_t e = 0; e < E; e++) {
        s_msg_t q;
        s_msg(&q, m, s_byz_id, e);
        assert_int_equal(s_send(m, &q, T0 + 1 + e), BN_MDROP_NONE);
    }
    assert_int_equal(bn_monitor_node_state(m, s_byz_id, T0 + 5), BN_NODE_FINISHED);
    uint32_t h = s_byz_id == 0 ? 1 : 0;
    assert_int_equal(bn_monitor_node_state(m, h, T0 + 5), BN_NODE_RUNNING);
    double last = T0 + 2 + E * BUDGET;   /* a silent node's deadline for the last epoch */
    assert_float_equal(bn_monitor_deadline(m, h, E - 1), last, 1e-9);
    assert_false(bn_monitor_done(m, last - 0.01));
    assert_int_equal(bn_monitor_tick(m, last, err, sizeof err), BN_OK);
    assert_true(bn_monitor_done(m, last));
    assert_int_equal(bn_monitor_node_state(m, h, last), BN_NODE_FAILED);
    const bn_monitor_epoch_t *ep = bn_monitor_epoch(m, 0);
    assert_true(ep->closed);
    assert_true(isnan(ep->consensus));
    assert_true(isnan(ep->mean_acc));
    assert_int_equal(ep->honest_reported, 0);
    assert_int_equal(bn_monitor_finish(m, last, false, err, sizeof err), BN_OK);
    const char *s = s_slurp("summary.json");
    assert_non_null(s);
    assert_non_null(strstr(s, "\"consensus_error\": null"));
    assert_null(strstr(s, "\"consensus_error\": 0"));
    assert_non_null(strstr(s, "\"state\": \"failed\", \"failed\": true"));
    bn_monitor_destroy(&m);
}

/* Before a restart: a dropped report, epoch 0 closed, one report of epoch 1. */
static bn_monitor_t *s_before_restart(bn_monitor_epoch_t *before)
{
    s_fresh();
    bn_monitor_t *m = s_new();
    uint32_t h = s_byz_id == 0 ? 1 : 0;
    s_msg_t bad;
    s_msg(&bad, m, h, 2);
    bad.r.config_fp ^= 1;
    assert_int_equal(s_send(m, &bad, T0 + 1), BN_MDROP_CONFIG);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(s_genuine(m, i, 0, T0 + 1), BN_MDROP_NONE);
    assert_int_equal(s_genuine(m, h, 1, T0 + 2), BN_MDROP_NONE);   /* epoch 1 still open */
    *before = *bn_monitor_epoch(m, 0);
    assert_true(before->closed);
    return m;
}

/* After it (m restarted): the same figures, drop counts and reports. */
static void s_after_restart(bn_monitor_t *m, const bn_monitor_epoch_t *before)
{
    char err[256];
    uint32_t h = s_byz_id == 0 ? 1 : 0;
    const bn_monitor_epoch_t *ep = bn_monitor_epoch(m, 0);
    assert_true(ep->closed);
    assert_int_equal(ep->honest_reported, before->honest_reported);
    assert_int_equal(ep->models, before->models);
    assert_float_equal(ep->consensus, before->consensus, 0);
    assert_float_equal(ep->mean_acc, before->mean_acc, 0);
    assert_false(bn_monitor_epoch(m, 1)->closed);
    assert_int_equal(bn_monitor_drops(m)[BN_MDROP_CONFIG], 1);   /* counted before the close */
    /* the report of epoch 1 from before the restart is known: a resend is a duplicate */
    assert_int_equal(s_genuine(m, h, 1, T0 + 3), BN_MDROP_DUPLICATE);
    for (uint32_t i = 0; i < N; i++)
        if (i != h)
            assert_int_equal(s_genuine(m, i, 1, T0 + 3), BN_MDROP_NONE);
    assert_true(bn_monitor_epoch(m, 1)->closed);
    /* its model was not journaled: eq. (3) over the models received since */
    assert_int_equal(bn_monitor_epoch(m, 1)->honest_reported, N - 1);
    assert_int_equal(bn_monitor_epoch(m, 1)->models, N - 2);
    assert_int_equal(bn_monitor_finish(m, T0 + 3, true, err, sizeof err), BN_OK);
    const char *s = s_slurp("summary.json");
    assert_non_null(strstr(s, "{\"epoch\": 1, "));
    assert_non_null(strstr(s, "{\"epoch\": 2, "));
}

/* A restarted monitor replays its journal: the epochs and reports from
 * before are in its summary, with the same figures; bn_monitor_reset is the
 * same restart; another swarm's journal is not replayed. */
static void test_restart_rebuilds_the_summary(void **state)
{
    (void) state;
    char err[256];
    bn_monitor_epoch_t before;
    bn_monitor_t *m = s_before_restart(&before);
    bn_monitor_destroy(&m);
    m = s_new();
    s_after_restart(m, &before);
    bn_monitor_destroy(&m);
    /* the same through bn_monitor_reset; then, without a journal, a blank monitor */
    m = s_before_restart(&before);
    assert_int_equal(bn_monitor_reset(m, T0, err, sizeof err), BN_OK);
    s_after_restart(m, &before);
    bn_monitor_clear(m);
    assert_false(bn_monitor_epoch(m, 0)->closed);
    assert_int_equal(bn_monitor_drops(m)[BN_MDROP_DUPLICATE], 0);
    s_fresh();
    assert_int_equal(bn_monitor_reset(m, T0, err, sizeof err), BN_OK);
    for (uint32_t e = 0; e < E; e++)
        assert_false(bn_monitor_epoch(m, e)->closed);
    for (int k = 0; k < BN_MDROP_COUNT; k++)
        assert_int_equal(bn_monitor_drops(m)[k], 0);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(s_genuine(m, i, 0, T0 + 1), BN_MDROP_NONE);
    assert_int_equal(bn_monitor_epoch(m, 0)->models, N - 1);
    bn_monitor_destroy(&m);

    /* another swarm name: the journal is not this run's, nothing replayed */
    s_write_swarm("another-swarm");
    m = s_new();
    assert_false(bn_monitor_epoch(m, 0)->closed);
    bn_monitor_destroy(&m);
    s_write_swarm("monitor-test");
    /* a journal cut in the middle of a record: the good prefix is replayed */
    s_fresh();
    m = s_new();
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(s_genuine(m, i, 0, T0 + 1), BN_MDROP_NONE);
    bn_monitor_destroy(&m);
    char path[400];
    snprintf(path, sizeof path, "%s/monitor.journal", s_out);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fwrite("\x95\x01\x00", 1, 3, f);   /* half a report record */
    fclose(f);
    m = s_new();
    assert_true(bn_monitor_epoch(m, 0)->closed);
    assert_int_equal(bn_monitor_epoch(m, 0)->honest_reported, N - 1);
    bn_monitor_destroy(&m);
}

/* summary.json stays valid text: a swarm name with quotes and backslashes
 * is escaped (swarmfile.c refuses names that are not UTF-8; bn_json_string
 * would write U+FFFD for them, tests/test_metrics.c), NaN figures as null. */
static void test_summary_is_valid_json_text(void **state)
{
    (void) state;
    s_write_swarm("we\"ird\\na\xc3\xa9me");
    s_fresh();
    bn_monitor_t *m = s_new();
    char err[256];
    /* an epoch without any honest figure: every number of it is null */
    s_msg_t q;
    s_msg(&q, m, s_byz_id, 0);
    assert_int_equal(s_send(m, &q, T0), BN_MDROP_NONE);
    assert_int_equal(bn_monitor_finish(m, T0, true, err, sizeof err), BN_OK);
    const char *s = s_slurp("summary.json");
    assert_non_null(strstr(s, "\"swarm\": \"we\\\"ird\\\\na\xc3\xa9me\""));
    assert_non_null(strstr(s, "\"mean_accuracy\": null"));
    assert_non_null(strstr(s, "\"consensus_error\": null"));
    assert_null(strstr(s, "nan"));
    assert_null(strstr(s, "inf"));
    bn_monitor_destroy(&m);
    s_write_swarm("monitor-test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_knows_the_swarm_from_its_file),
        cmocka_unit_test(test_one_reason_per_bad_field),
        cmocka_unit_test(test_other_configuration_is_dropped),
        cmocka_unit_test(test_curve_requires_the_authenticated_id),
        cmocka_unit_test(test_epochs_close_by_reports_or_deadline),
        cmocka_unit_test(test_null_consensus_and_done_by_deadline),
        cmocka_unit_test(test_deadline_follows_the_pace),
        cmocka_unit_test(test_efficiency_and_memory),
        cmocka_unit_test(test_restart_rebuilds_the_summary),
        cmocka_unit_test(test_summary_is_valid_json_text),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
