/*  test_node.c -- a real `byznode node` under hostile input.
 *
 *  Node 0 runs as a child process ($BN_BUILD_ROOT/src/byznode) in a 3-node
 *  swarm whose graph (an edge-list file) is 0 - 1 - 2: node 0's only
 *  neighbour is node 1, and node 2 is not adjacent to it.  This process plays
 *  node 1 (binds node 1's PULL, PUSHes to node 0) and the monitor (binds the
 *  monitor endpoint and reads node 0's REPORT: [header][metrics][model]).
 *  Node 0 trains logreg on a tiny IDX set of its own (40 images, batch 10:
 *  4 rounds, one epoch) with rule mean.
 *
 *  Every round the harness waits for node 0's model, sends the scenario's bad
 *  messages, then the valid vector for the round (a fixed function of the
 *  round).  Because the valid vector always arrives, node 0's final model
 *  must be bit-identical to the clean run's; the report's drops[] must show
 *  exactly the bad messages under their reason, and the node must exit 0.
 *  CURVE: a listed key claiming another id is dropped as 'auth', an unlisted
 *  key never gets a message in; both leave the model equal to the clean
 *  CURVE run's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "metrics.h"
#include "wire.h"
#include "fixture.h"

#define S_TRAIN   40      /* training images of node 0                        */
#define S_BATCH   10      /* => S_ROUNDS rounds in the one epoch              */
#define S_ROUNDS  4
#define S_TEST    20
#define S_WINDOW  4       /* --future-rounds (the node's default)             */
#define S_WAIT_MS 10000   /* every receive of the harness                     */

typedef void (*s_bad_fn)(uint64_t round);
/* Set by a scenario for a round whose valid model must not follow its bad one. */
static bool s_no_valid;

/* Everything of one run of node 0. */
typedef struct {
    char      dir[192];            /* this run's directory                   */
    bool      curve;
    pid_t     pid;
    void     *pull1, *push0, *mon, *extra;
    bool      sent[S_ROUNDS + S_WINDOW + 2];  /* valid vector sent for round   */
    uint32_t  dim;
    uint64_t  swarm_id, topo, config;
    float    *model;               /* node 0's final model (malloc)          */
    bn_report_t rep;
} s_run_t;

static char  s_root[128];          /* temp dir of the whole file              */
static void *s_ctx;
static int   s_run_no;
static char  s_pub[5][41], s_sec[5][41];  /* 0, 1, 2, monitor, unlisted      */
static s_run_t s_cur;              /* the run in progress                     */
static float *s_clean[2];          /* final models of the clean runs (plain, CURVE) */
static uint32_t s_dim;             /* node 0's model dimension (from its first message) */
static bn_report_t s_clean_rep[2];

/* ---- files ------------------------------------------------------------- */

static void s_put_be32(FILE *f, uint32_t v)
{
    uint8_t b[4] = { (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };
    fwrite(b, 1, 4, f);
}

/* Writes an IDX pair of n learnable 28x28 images (pattern depends on the label). */
static void s_write_idx(const char *images, const char *labels, uint32_t n, uint32_t salt)
{
    FILE *fi = fopen(images, "wb"), *fl = fopen(labels, "wb");
    assert_non_null(fi);
    assert_non_null(fl);
    s_put_be32(fi, 0x00000803);
    s_put_be32(fi, n);
    s_put_be32(fi, 28);
    s_put_be32(fi, 28);
    s_put_be32(fl, 0x00000801);
    s_put_be32(fl, n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t label = (uint8_t) ((i * 7 + salt) % 10);
        fputc(label, fl);
        for (uint32_t p = 0; p < 784; p++) {
            uint8_t px = (uint8_t) ((p / 78 == label) ? 200 + (p + i) % 50 : (p * 13 + i * salt) % 40);
            fputc(px, fi);
        }
    }
    fclose(fi);
    fclose(fl);
}

static void s_endpoint(char *out, size_t cap, const char *dir, const char *who)
{
    snprintf(out, cap, "ipc://%s/%s.sock", dir, who);
}

/* Writes DIR/swarm.txt (3 nodes, graph 0-1-2, keys when curve). */
static void s_write_swarm(const s_run_t *r)
{
    char path[256], ep[256];
    snprintf(path, sizeof path, "%s/swarm.txt", r->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "swarm test-node\n");
    s_endpoint(ep, sizeof ep, r->dir, "m");
    fprintf(f, "monitor %s %s\n", ep, r->curve ? s_pub[3] : "");
    fprintf(f, "option topology %s/edges.txt\n", s_root);
    /* Swarm-wide: R = ceil(ceil(120 / 3) / 10) = 4 rounds (S_ROUNDS). */
    fprintf(f, "option train-size %d\noption model logreg\noption epochs 1\noption batch %d\n"
               "option rule mean\noption seed 7\n", 3 * S_TRAIN, S_BATCH);
    for (int i = 0; i < 3; i++) {
        char who[8];
        snprintf(who, sizeof who, "%d", i);
        s_endpoint(ep, sizeof ep, r->dir, who);
        fprintf(f, "node %d %s %s\n", i, ep, r->curve ? s_pub[i] : "");
    }
    fclose(f);
}

/* ---- sockets ----------------------------------------------------------- */

static void *s_socket(int type, int curve_as)
{
    void *s = zmq_socket(s_ctx, type);
    assert_non_null(s);
    int zero = 0, hwm = 1000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, type == ZMQ_PUSH ? ZMQ_SNDHWM : ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (curve_as >= 0 && type == ZMQ_PULL) {
        int one = 1;
        zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, s_sec[curve_as], 40);
    } else if (curve_as >= 0) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, s_pub[0], 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, s_pub[curve_as], 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, s_sec[curve_as], 40);
    }
    return s;
}

/* A PUSH to node 0 speaking with key `as` (CURVE runs) or plain. */
static void *s_push_to_node0(int as)
{
    void *s = s_socket(ZMQ_PUSH, s_cur.curve ? as : -1);
    char ep[256];
    s_endpoint(ep, sizeof ep, s_cur.dir, "0");
    assert_int_equal(zmq_connect(s, ep), 0);
    return s;
}

/* Receives one multipart message into frames (at most 4); returns the frame
 * count, or -1 after S_WAIT_MS without a message. */
static int s_recv(void *sock, zmq_msg_t *frames)
{
    zmq_pollitem_t it = { sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll(&it, 1, S_WAIT_MS) != 1)
        return -1;
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp, *m = n < 4 ? &frames[n] : &tmp;
        zmq_msg_init(m);
        assert_true(zmq_msg_recv(m, sock, 0) >= 0);
        more = zmq_msg_more(m);
        if (m == &tmp)
            zmq_msg_close(m);
        else
            n++;
    }
    return n;
}

/* ---- messages ---------------------------------------------------------- */

/* A valid MODEL header from node 1 for `round`. */
static bn_wire_header_t s_hdr(uint64_t round)
{
    bn_wire_header_t h = { .version = BN_WIRE_VERSION, .kind = BN_MSG_MODEL,
                           .swarm_id = s_cur.swarm_id, .sender = 1,
                           .epoch = (uint32_t) (round / S_ROUNDS), .round = round,
                           .topology = s_cur.topo, .config = s_cur.config, .dtype = BN_DTYPE_F32,
                           .dim = s_cur.dim, .origin = 1 };
    return h;
}

/* The valid vector of a round: a fixed function of (round, index). */
static void s_valid_vec(float *v, uint32_t dim, uint64_t round)
{
    for (uint32_t i = 0; i < dim; i++)
        v[i] = (float) ((int) ((i * 7 + round * 13) % 101) - 50) * 1e-3f;
}

/* Sends frames [header(h)][payload] on sock; payload values all `fill`, or the
 * valid vector when fill is NAN; plen bytes (SIZE_MAX: dim * 4).  Never
 * blocks for more than 1 s: a PUSH whose connection never completes (an
 * unlisted CURVE key) has nowhere to queue.  Returns true if sent; fails the
 * test when must_send and the message could not be queued. */
static bool s_send_try(void *sock, const bn_wire_header_t *h, float fill, size_t plen, bool must_send)
{
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0;
    assert_int_equal(bn_wire_encode(h, hb, sizeof hb, &hlen), BN_OK);
    if (plen == SIZE_MAX)
        plen = (size_t) s_cur.dim * 4;
    float *p = calloc(plen / 4 + 1, sizeof(float));
    assert_non_null(p);
    if (isnan(fill))
        s_valid_vec(p, (uint32_t) (plen / 4), h->round);
    else
        for (size_t i = 0; i < plen / 4; i++)
            p[i] = fill;
    zmq_pollitem_t it = { sock, 0, ZMQ_POLLOUT, 0 };
    bool ok = zmq_poll(&it, 1, 1000) == 1 && zmq_send(sock, hb, hlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0;
    if (ok)
        assert_true(zmq_send(sock, p, plen, ZMQ_DONTWAIT) >= 0);
    free(p);
    if (must_send && !ok)
        fail_msg("could not queue a message for node 0");
    return ok;
}

static void s_send_on(void *sock, const bn_wire_header_t *h, float fill, size_t plen)
{
    s_send_try(sock, h, fill, plen, true);
}

/* A bad message on the main socket: header h, payload of 1.0f (which would
 * change the model if it were ever aggregated). */
static void s_send_bad(const bn_wire_header_t *h)
{
    s_send_on(s_cur.push0, h, 1.0f, SIZE_MAX);
}

static void s_send_valid(uint64_t round)
{
    if (round < BN_ARRAY_LEN(s_cur.sent) && s_cur.sent[round])
        return;
    bn_wire_header_t h = s_hdr(round);
    s_send_on(s_cur.push0, &h, NAN, SIZE_MAX);
    if (round < BN_ARRAY_LEN(s_cur.sent))
        s_cur.sent[round] = true;
}

/* Raw frames on the main socket. */
static void s_send_frames(int n, const void *const *data, const size_t *len)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(s_cur.push0, data[i], len[i], (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) >= 0);
}

/* ---- one run of node 0 ------------------------------------------------- */

static void s_spawn(void)
{
    const char *root = getenv("BN_BUILD_ROOT");
    assert_non_null(root);
    char bin[512], swarm[256], out[256], log[256], timgs[256], tlabs[256], data[256], key[256];
    snprintf(bin, sizeof bin, "%s/src/byznode", root);
    snprintf(swarm, sizeof swarm, "%s/swarm.txt", s_cur.dir);
    snprintf(out, sizeof out, "%s/out", s_cur.dir);
    snprintf(log, sizeof log, "%s/node0.log", s_cur.dir);
    snprintf(timgs, sizeof timgs, "%s/train-images-idx3-ubyte", s_root);
    snprintf(tlabs, sizeof tlabs, "%s/train-labels-idx1-ubyte", s_root);
    snprintf(data, sizeof data, "%s", s_root);
    snprintf(key, sizeof key, "%s/0.key", s_root);
    char *argv[] = { bin, "node", "--swarm", swarm, "--id", "0", "--out", out,
                     "--train-images", timgs, "--train-labels", tlabs,
                     "--data", data, "--round-timeout", "3000",
                     /* node 1, played here, reads its models off the socket */
                     "--shm", "off",
                     s_cur.curve ? "--key" : NULL, key, NULL };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, argv);
        _exit(127);
    }
    s_cur.pid = pid;
}

/* Waits up to 10 s for node 0 to exit; returns its exit status (-1 on timeout). */
static int s_reap(void)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        pid_t p = waitpid(s_cur.pid, &st, WNOHANG);
        if (p == s_cur.pid) {
            s_cur.pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    return -1;
}

static void s_run_cleanup(void)
{
    if (s_cur.pid > 0) {
        kill(s_cur.pid, SIGKILL);
        waitpid(s_cur.pid, NULL, 0);
        s_cur.pid = 0;
    }
    void **socks[] = { &s_cur.pull1, &s_cur.push0, &s_cur.mon, &s_cur.extra };
    for (size_t i = 0; i < BN_ARRAY_LEN(socks); i++)
        if (*socks[i]) {
            zmq_close(*socks[i]);
            *socks[i] = NULL;
        }
    free(s_cur.model);
    s_cur.model = NULL;
    free(s_cur.rep.weight);
    s_cur.rep.weight = NULL;
}

/* Starts a run: directory, swarm file, the harness's sockets. */
static void s_run_begin(bool curve)
{
    s_run_cleanup();
    memset(&s_cur, 0, sizeof s_cur);
    s_cur.curve = curve;
    alarm(60);           /* a hung run fails the program instead of stalling the suite */
    snprintf(s_cur.dir, sizeof s_cur.dir, "%s/run-%d", s_root, ++s_run_no);
    assert_int_equal(mkdir(s_cur.dir, 0700), 0);
    s_write_swarm(&s_cur);
    char ep[256];
    s_cur.pull1 = s_socket(ZMQ_PULL, curve ? 1 : -1);
    s_endpoint(ep, sizeof ep, s_cur.dir, "1");
    assert_int_equal(zmq_bind(s_cur.pull1, ep), 0);
    s_cur.mon = s_socket(ZMQ_PULL, curve ? 3 : -1);
    s_endpoint(ep, sizeof ep, s_cur.dir, "m");
    assert_int_equal(zmq_bind(s_cur.mon, ep), 0);
    s_cur.push0 = s_push_to_node0(1);
}

/* Plays node 1 for the whole epoch (bad(round) before each valid vector),
 * then reads the report and the final model, and reaps node 0. */
static void s_run_play(s_bad_fn bad)
{
    s_spawn();
    for (uint64_t r = 0; r < S_ROUNDS; r++) {
        zmq_msg_t f[4];
        int n = s_recv(s_cur.pull1, f);
        if (n < 0)
            fail_msg("no model from node 0 for round %llu (see %s/node0.log)",
                     (unsigned long long) r, s_cur.dir);
        assert_int_equal(n, 2);
        bn_wire_header_t h;
        assert_int_equal(bn_wire_decode(zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), &h), BN_DROP_NONE);
        assert_int_equal(h.kind, BN_MSG_MODEL);
        assert_int_equal(h.sender, 0);
        assert_int_equal(h.round, r);
        s_cur.dim = s_dim = h.dim;
        s_cur.swarm_id = h.swarm_id;
        s_cur.topo = h.topology;
        s_cur.config = h.config;
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        s_no_valid = false;
        if (bad)
            bad(r);
        if (!s_no_valid)
            s_send_valid(r);
    }
    zmq_msg_t f[4];
    int n = s_recv(s_cur.mon, f);
    if (n < 0)
        fail_msg("no report from node 0 (see %s/node0.log)", s_cur.dir);
    assert_int_equal(n, 3);
    assert_int_equal(bn_report_unpack(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), &s_cur.rep), BN_OK);
    assert_true(s_cur.rep.final);
    assert_int_equal(zmq_msg_size(&f[2]), (size_t) s_cur.dim * 4);
    s_cur.model = malloc((size_t) s_cur.dim * 4);
    assert_non_null(s_cur.model);
    memcpy(s_cur.model, zmq_msg_data(&f[2]), (size_t) s_cur.dim * 4);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    int st = s_reap();
    if (st != 0)
        fail_msg("node 0 exited with status %d (see %s/node0.log)", st, s_cur.dir);
}

/* Counts lines of node 0's log that contain `needle`. */
static int s_log_count(const char *needle)
{
    char path[256], line[1024];
    snprintf(path, sizeof path, "%s/node0.log", s_cur.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* True if node 0's JSON line holds `"name": count` inside "dropped". */
static bool s_jsonl_has(const char *name, uint64_t count)
{
    char path[256], line[8192], want[96];
    snprintf(path, sizeof path, "%s/out/node-0.jsonl", s_cur.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    const char *d = strstr(line, "\"dropped\": {");
    snprintf(want, sizeof want, "\"%s\": %llu", name, (unsigned long long) count);
    return d && strstr(d, want) && strchr(d, '}') > strstr(d, want);
}

/* The clean run's final model (plain or CURVE), computed once. */
static const float *s_clean_model(bool curve)
{
    int k = curve ? 1 : 0;
    if (!s_clean[k]) {
        s_run_begin(curve);
        s_run_play(NULL);
        for (int i = 1; i < BN_DROP_COUNT; i++)
            assert_int_equal(s_cur.rep.drops[i], 0);
        assert_int_equal(s_cur.rep.rounds_timed_out, 0);
        s_clean[k] = s_cur.model;
        s_cur.model = NULL;
        s_clean_rep[k] = s_cur.rep;
        s_clean_rep[k].weight = NULL;
        s_run_cleanup();
    }
    return s_clean[k];
}

/* Runs the scenario and checks: node 0 finished, drops[reason] == expected and
 * no other reason counted, one log line for (node 1 or unidentified, reason),
 * and the final model equals the clean run's bit for bit. */
static void s_check(s_bad_fn bad, bn_drop_reason_t reason, uint64_t expected, bool curve)
{
    const float *clean = s_clean_model(curve);
    s_run_begin(curve);
    s_run_play(bad);
    for (int i = 1; i < BN_DROP_COUNT; i++) {
        uint64_t want = i == (int) reason ? expected : 0;
        if (s_cur.rep.drops[i] != want)
            fail_msg("drops[%s] = %llu, expected %llu", bn_drop_reason_name(i),
                     (unsigned long long) s_cur.rep.drops[i], (unsigned long long) want);
    }
    assert_int_equal(s_cur.rep.rounds_timed_out, 0);
    if (reason != BN_DROP_NONE) {
        assert_true(s_jsonl_has(bn_drop_reason_name(reason), expected));
        /* Logged once per peer and reason: per node id (the claimed sender,
         * or the authenticated one for 'auth'), or "an unidentified sender"
         * for messages that name no one (bad frames, header, sender). */
        char needle[128];
        int total = 0;
        for (int peer = 0; peer <= 3; peer++) {
            if (peer < 3)
                snprintf(needle, sizeof needle, "from node %d: %s (logged once", peer,
                         bn_drop_reason_name(reason));
            else
                snprintf(needle, sizeof needle, "unidentified sender: %s (logged once",
                         bn_drop_reason_name(reason));
            int c = s_log_count(needle);
            assert_in_range(c, 0, 1);
            total += c;
        }
        assert_true(total >= 1);
    }
    assert_memory_equal(s_cur.model, clean, (size_t) s_cur.dim * 4);
    s_run_cleanup();
}

/* ---- scenarios: one per rejection reason -------------------------------- */

static void s_bad_frames(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    float *p = calloc(s_cur.dim, sizeof(float));
    assert_non_null(p);
    size_t plen = (size_t) s_cur.dim * 4;
    if (round == 0) {                      /* one frame: header only */
        const void *d[] = { hb };
        size_t l[] = { hlen };
        s_send_frames(1, d, l);
    } else if (round == 1) {               /* five frames: header, payload, 3 more */
        const void *d[] = { hb, p, "x", "y", "z" };
        size_t l[] = { hlen, plen, 1, 1, 1 };
        s_send_frames(5, d, l);
    } else if (round == 2) {               /* three frames */
        const void *d[] = { hb, "extra", p };
        size_t l[] = { hlen, 5, plen };
        s_send_frames(3, d, l);
    }
    free(p);
}

static void s_bad_header(uint64_t round)
{
    if (round == 0) {                      /* not MessagePack at all */
        const void *d[] = { "\xc1\xff garbage \x00\x01", "\x00\x00\x80\x3f" };
        size_t l[] = { 14, 4 };
        s_send_frames(2, d, l);
    } else if (round == 1) {               /* empty header frame */
        float one = 1.0f;
        const void *d[] = { "", &one };
        size_t l[] = { 0, 4 };
        s_send_frames(2, d, l);
    } else if (round == 2) {               /* epoch does not match the round */
        bn_wire_header_t h = s_hdr(round);
        h.epoch = 1;
        s_send_bad(&h);
    }
}

static void s_bad_version(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    h.version = BN_WIRE_VERSION + 1;
    s_send_bad(&h);
}

static void s_bad_kind(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    h.kind = round == 0 ? 9u : round == 1 ? BN_MSG_REPORT : round == 2 ? BN_MSG_COLLUDE : 0u;
    s_send_bad(&h);
}

static void s_bad_swarm(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    h.swarm_id ^= 1;
    s_send_bad(&h);
}

static void s_bad_sender(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    if (round == 0) {
        h.sender = h.origin = 3;           /* outside 0..n-1 */
    } else if (round == 1) {
        h.sender = h.origin = 0;           /* node 0's own id */
    } else if (round == 2) {
        h.origin = 2;                      /* MODEL whose origin is not its sender */
    } else {
        h.sender = h.origin = UINT32_MAX;
    }
    s_send_bad(&h);
}

static void s_bad_dtype(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    h.dtype = round == 0 ? 2u : 0u;
    if (round < 2)
        s_send_bad(&h);
}

static void s_bad_dim(uint64_t round)
{
    bn_wire_header_t h = s_hdr(round);
    if (round == 0) {                      /* dim differs from the model's */
        h.dim = 100;
        s_send_on(s_cur.push0, &h, 1.0f, 400);
    } else if (round == 1) {               /* payload one float short */
        s_send_on(s_cur.push0, &h, 1.0f, (size_t) s_cur.dim * 4 - 4);
    } else if (round == 2) {               /* payload not a multiple of 4 */
        s_send_on(s_cur.push0, &h, 1.0f, (size_t) s_cur.dim * 4 + 2);
    }
}

static void s_send_with_value(uint64_t round, uint32_t at, float v)
{
    bn_wire_header_t h = s_hdr(round);
    float *p = malloc((size_t) s_cur.dim * 4);
    assert_non_null(p);
    s_valid_vec(p, s_cur.dim, round);
    p[at] = v;
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    const void *d[] = { hb, p };
    size_t l[] = { hlen, (size_t) s_cur.dim * 4 };
    s_send_frames(2, d, l);
    free(p);
}

/* A neighbour whose model of round 0 is not finite: its only model of that
 * round (a sender has one word per round; test_drop_nonfinite).  NaN, +inf
 * and -inf at the first, last and middle positions: tests/test_wire.c. */
static void s_bad_nonfinite(uint64_t round)
{
    s_no_valid = round == 0;
    if (round == 0)
        s_send_with_value(round, 5, NAN);
}

static void s_bad_stale(uint64_t round)
{
    if (round >= 1 && round <= 2) {
        bn_wire_header_t h = s_hdr(round - 1);
        s_send_bad(&h);
    }
}

static void s_bad_duplicate(uint64_t round)
{
    /* The next round's valid vector goes ahead (kept in the early-message
     * ring), then a second, different message for that round. */
    if (round == 0 || round == 2) {
        s_send_valid(round + 1);
        bn_wire_header_t h = s_hdr(round + 1);
        s_send_bad(&h);
    }
}

static void s_bad_future(uint64_t round)
{
    if (round == 0) {
        bn_wire_header_t h = s_hdr(round + S_WINDOW);  /* first round outside the window */
        s_send_bad(&h);
        h = s_hdr(1000000);
        s_send_bad(&h);
    }
}

static void s_bad_not_neighbor(uint64_t round)
{
    if (round < 2) {
        bn_wire_header_t h = s_hdr(round);
        h.sender = h.origin = 2;           /* listed, but not adjacent to node 0 */
        s_send_bad(&h);
    }
}

static void s_bad_topology(uint64_t round)
{
    if (round < 2) {
        bn_wire_header_t h = s_hdr(round);
        h.topology ^= 0x100;
        s_send_bad(&h);
    }
}

/* Oversize: a payload frame above ZMQ_MAXMSGSIZE on a second connection.
 * libzmq refuses it and drops that connection; the node never sees it. */
static void s_bad_oversize(uint64_t round)
{
    if (round == 0) {
        if (!s_cur.extra)
            s_cur.extra = s_push_to_node0(1);
        bn_wire_header_t h = s_hdr(round);
        s_send_on(s_cur.extra, &h, 1.0f, (size_t) s_cur.dim * 4 + 64 * 1024);
        usleep(200 * 1000);                /* let it reach node 0 first */
    }
}

/* CURVE: node 2 (listed key) claims to be node 1. */
static void s_bad_impostor(uint64_t round)
{
    if (!s_cur.extra)
        s_cur.extra = s_push_to_node0(2);
    if (round + 1 < S_ROUNDS) {
        bn_wire_header_t h = s_hdr(round);    /* sender 1, but key of node 2 */
        s_send_on(s_cur.extra, &h, 1.0f, SIZE_MAX);
        usleep(150 * 1000);
    }
}

/* CURVE: a key that is not in the swarm file, claiming to be node 1. */
static void s_bad_unlisted(uint64_t round)
{
    if (!s_cur.extra)
        s_cur.extra = s_push_to_node0(4);
    bn_wire_header_t h = s_hdr(round);
    if (s_send_try(s_cur.extra, &h, 1.0f, SIZE_MAX, false))
        usleep(150 * 1000);
}

/* Control: a well-formed message with other values, sent before the valid
 * one, IS aggregated (the valid one then arrives stale). */
static void s_control_accepted(uint64_t round)
{
    if (round == 1) {
        bn_wire_header_t h = s_hdr(round);
        s_send_bad(&h);
    }
}

/* ---- tests ------------------------------------------------------------- */

static void test_clean_run_is_repeatable(void **state)
{
    (void) state;
    s_check(NULL, BN_DROP_NONE, 0, false);
    assert_true(s_clean_rep[0].msgs_received == S_ROUNDS);
}

/* The control that makes the others meaningful: a message that passes every
 * check changes node 0's final model. */
static void test_control_accepted_message_changes_model(void **state)
{
    (void) state;
    const float *clean = s_clean_model(false);
    s_run_begin(false);
    s_run_play(s_control_accepted);
    assert_int_equal(s_cur.rep.drops[BN_DROP_STALE], 1);   /* the valid one, too late */
    assert_true(memcmp(s_cur.model, clean, (size_t) s_cur.dim * 4) != 0);
    s_run_cleanup();
}

static void test_drop_frames(void **state)      { (void) state; s_check(s_bad_frames, BN_DROP_FRAMES, 3, false); }
static void test_drop_header(void **state)      { (void) state; s_check(s_bad_header, BN_DROP_HEADER, 3, false); }
static void test_drop_version(void **state)     { (void) state; s_check(s_bad_version, BN_DROP_VERSION, S_ROUNDS, false); }
static void test_drop_kind(void **state)        { (void) state; s_check(s_bad_kind, BN_DROP_KIND, S_ROUNDS, false); }
static void test_drop_swarm(void **state)       { (void) state; s_check(s_bad_swarm, BN_DROP_SWARM, S_ROUNDS, false); }
static void test_drop_dtype(void **state)       { (void) state; s_check(s_bad_dtype, BN_DROP_DTYPE, 2, false); }
static void test_drop_dim(void **state)         { (void) state; s_check(s_bad_dim, BN_DROP_DIM, 3, false); }
/* Non-finite: dropped and counted, logged once, and the round does not wait
 * for a replacement (none comes; before, it waited out the 3 s deadline):
 * no round times out, the model is missing once, the node's stays finite. */
static void test_drop_nonfinite(void **state)
{
    (void) state;
    s_run_begin(false);
    s_run_play(s_bad_nonfinite);
    for (int i = 1; i < BN_DROP_COUNT; i++)
        assert_int_equal(s_cur.rep.drops[i], i == BN_DROP_NONFINITE ? 1 : 0);
    assert_int_equal(s_cur.rep.rounds_timed_out, 0);
    assert_int_equal(s_cur.rep.missing, 1);
    assert_true(s_jsonl_has("nonfinite", 1));
    assert_int_equal(s_log_count(": nonfinite (logged once"), 1);
    for (uint32_t d = 0; d < s_cur.dim; d++)
        assert_true(isfinite(s_cur.model[d]));
    s_run_cleanup();
}
static void test_drop_stale(void **state)       { (void) state; s_check(s_bad_stale, BN_DROP_STALE, 2, false); }
static void test_drop_duplicate(void **state)   { (void) state; s_check(s_bad_duplicate, BN_DROP_DUPLICATE, 2, false); }
static void test_drop_future(void **state)      { (void) state; s_check(s_bad_future, BN_DROP_FUTURE, 2, false); }
static void test_drop_not_neighbor(void **state){ (void) state; s_check(s_bad_not_neighbor, BN_DROP_NOT_NEIGHBOR, 2, false); }
static void test_drop_topology(void **state)    { (void) state; s_check(s_bad_topology, BN_DROP_TOPOLOGY, 2, false); }

/* Sender checks are logged under "an unidentified sender" (a bad id names no one). */
static void test_drop_sender(void **state)
{
    (void) state;
    const float *clean = s_clean_model(false);
    s_run_begin(false);
    s_run_play(s_bad_sender);
    assert_int_equal(s_cur.rep.drops[BN_DROP_SENDER], S_ROUNDS);
    for (int i = 1; i < BN_DROP_COUNT; i++)
        if (i != BN_DROP_SENDER)
            assert_int_equal(s_cur.rep.drops[i], 0);
    assert_true(s_jsonl_has("sender", S_ROUNDS));
    assert_int_equal(s_log_count("unidentified sender: sender"), 1);
    assert_memory_equal(s_cur.model, clean, (size_t) s_cur.dim * 4);
    s_run_cleanup();
}

/* Oversize: refused by libzmq itself (ZMQ_MAXMSGSIZE), so nothing is counted
 * and the node receives no more messages than in the clean run. */
static void test_drop_oversize(void **state)
{
    (void) state;
    const float *clean = s_clean_model(false);
    s_run_begin(false);
    s_run_play(s_bad_oversize);
    for (int i = 1; i < BN_DROP_COUNT; i++)
        assert_int_equal(s_cur.rep.drops[i], 0);
    assert_int_equal(s_cur.rep.msgs_received, s_clean_rep[0].msgs_received);
    assert_memory_equal(s_cur.model, clean, (size_t) s_cur.dim * 4);
    s_run_cleanup();
}

static void test_curve_clean_matches_plain(void **state)
{
    (void) state;
    const float *plain = s_clean_model(false);
    const float *curve = s_clean_model(true);
    assert_memory_equal(plain, curve, (size_t) s_dim * 4);
}

static void test_curve_impostor_dropped_as_auth(void **state)
{
    (void) state;
    s_check(s_bad_impostor, BN_DROP_AUTH, S_ROUNDS - 1, true);
}

/* An unlisted key never completes the handshake: no drop is even counted,
 * and the node receives exactly what it received in the clean CURVE run. */
static void test_curve_unlisted_key_never_heard(void **state)
{
    (void) state;
    const float *clean = s_clean_model(true);
    s_run_begin(true);
    s_run_play(s_bad_unlisted);
    for (int i = 1; i < BN_DROP_COUNT; i++)
        assert_int_equal(s_cur.rep.drops[i], 0);
    assert_int_equal(s_cur.rep.msgs_received, s_clean_rep[1].msgs_received);
    assert_memory_equal(s_cur.model, clean, (size_t) s_cur.dim * 4);
    s_run_cleanup();
}

/* ---- fixture ----------------------------------------------------------- */

static int s_setup(void **state)
{
    (void) state;
    if (bn_fx_tmpdir(s_root, sizeof s_root, "node") != 0)
        return -1;
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", s_root);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", s_root);
    s_write_idx(a, b, S_TRAIN, 3);
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte", s_root);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", s_root);
    s_write_idx(a, b, S_TEST, 5);
    snprintf(a, sizeof a, "%s/edges.txt", s_root);
    FILE *f = fopen(a, "w");
    if (!f)
        return -1;
    fprintf(f, "# node 0's only neighbour is node 1\n0 1\n1 2\n");
    fclose(f);
    for (int i = 0; i < 5; i++)
        if (zmq_curve_keypair(s_pub[i], s_sec[i]) != 0)
            return -1;
    snprintf(a, sizeof a, "%s/0.key", s_root);
    f = fopen(a, "w");
    if (!f)
        return -1;
    fprintf(f, "public-key %s\nsecret-key %s\n", s_pub[0], s_sec[0]);
    fclose(f);
    s_ctx = zmq_ctx_new();
    return s_ctx ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void) state;
    s_run_cleanup();
    free(s_clean[0]);
    free(s_clean[1]);
    zmq_ctx_term(s_ctx);
    return bn_fx_rmtree(s_root);
}

static int s_test_teardown(void **state)
{
    (void) state;
    s_run_cleanup();     /* kills node 0 if a failed check left it running */
    return 0;
}

#define T(f) cmocka_unit_test_teardown(f, s_test_teardown)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        T(test_clean_run_is_repeatable),
        T(test_control_accepted_message_changes_model),
        T(test_drop_frames),
        T(test_drop_header),
        T(test_drop_version),
        T(test_drop_kind),
        T(test_drop_swarm),
        T(test_drop_sender),
        T(test_drop_dtype),
        T(test_drop_dim),
        T(test_drop_nonfinite),
        T(test_drop_stale),
        T(test_drop_duplicate),
        T(test_drop_future),
        T(test_drop_not_neighbor),
        T(test_drop_topology),
        T(test_drop_oversize),
        T(test_curve_clean_matches_plain),
        T(test_curve_impostor_dropped_as_auth),
        T(test_curve_unlisted_key_never_heard),
    };
    if (getenv("BN_TEST_FILTER"))
        cmocka_set_test_filter(getenv("BN_TEST_FILTER"));
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
