/*  test_transport.c -- loopback sockets: delivery, timeouts, drop-don't-block,
 *  CURVE authentication (listed key, unlisted key, authenticated id), the
 *  per-message size bound (a multipart message of many small frames), shared
 *  buffers, and fault injection inside the transport (loss, delay, a drain
 *  that honours the stop flag). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "transport.h"
#include "fixture.h"

/* A shared payload of len bytes, every byte `fill`. */
static bn_buf_t *s_buf(size_t len, int fill)
{
    void *p;
    bn_buf_t *b = bn_buf_new(len, &p);
    assert_non_null(b);
    memset(p, fill, len);
    return b;
}

static char s_dir[128];

static void s_swarm(bn_swarm_t *s, uint32_t n, char (*pub)[41])
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "test");
    s->swarm_id = 42;
    s->n = n;
    s->nodes = calloc(n, sizeof *s->nodes);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(s->nodes[i].endpoint, BN_ENDPOINT_MAX, "ipc://%s/%u", s_dir, i);
        if (pub)
            memcpy(s->nodes[i].public_key, pub[i], 41);
    }
    s->curve = pub != NULL;
}

static int s_setup(void **state)
{
    (void) state;
    return bn_fx_tmpdir(s_dir, sizeof s_dir, "transport");
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

/* Nodes 0 (a, with opts oa) and 1 (b, oa without fault injection) of a
 * plain 2-node swarm. */
typedef struct {
    bn_swarm_t s;
    bn_transport_t *a, *b;
} s_pair_t;

static void s_pair(s_pair_t *p, const bn_transport_opts_t *oa)
{
    s_swarm(&p->s, 2, NULL);
    bn_transport_opts_t ob = *oa;
    ob.fault_drop = 0;
    ob.fault_delay_ms = 0;
    char err[256];
    p->a = bn_transport_new(&p->s, 0, NULL, oa, err, sizeof err);
    p->b = bn_transport_new(&p->s, 1, NULL, &ob, err, sizeof err);
    assert_non_null(p->a);
    assert_non_null(p->b);
}

static void s_pair_free(s_pair_t *p)
{
    bn_transport_destroy(&p->a);
    bn_transport_destroy(&p->b);
    free(p->s.nodes);
}

/* The options of most cases: the defaults, close without waiting. */
static bn_transport_opts_t s_opts(void)
{
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);
    o.linger_ms = 0;
    return o;
}

static void test_send_and_receive(void **state)
{
    (void) state;
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);
    s_pair_t pr;
    s_pair(&pr, &o);
    bn_transport_t *a = pr.a, *b = pr.b;

    float vec[1000];
    for (int i = 0; i < 1000; i++)
        vec[i] = (float) i * 0.5f;
    void *p;
    bn_buf_t *payload = bn_buf_new(sizeof vec, &p);
    assert_non_null(payload);
    assert_int_equal((uintptr_t) p & 3u, 0);
    memcpy(p, vec, sizeof vec);
    assert_int_equal(bn_transport_send(a, 1, "hdr", 3, NULL, 0, payload), BN_OK);
    assert_int_equal(bn_transport_send(a, 1, "second", 6, "mid", 3, payload), BN_OK);
    bn_buf_release(&payload);
    assert_null(payload);
    bn_buf_release(&payload);   /* safe twice */

    bn_msg_t *rx = NULL;
    size_t len;
    assert_int_equal(bn_transport_recv(b, 2000, &rx), BN_OK);
    assert_int_equal(bn_msg_count(rx), 2);
    assert_memory_equal(bn_msg_frame(rx, 0, &len), "hdr", 3);
    assert_int_equal(len, 3);
    assert_memory_equal(bn_msg_frame(rx, 1, &len), vec, sizeof vec);
    assert_int_equal(len, sizeof vec);
    assert_int_equal(bn_msg_auth(rx), BN_AUTH_NONE);
    assert_false(bn_msg_oversize(rx));
    /* A taken frame is the message's no more; its data is aligned. */
    bn_buf_t *taken = bn_msg_take(rx, 1);
    assert_non_null(taken);
    assert_null(bn_msg_frame(rx, 1, &len));
    assert_null(bn_msg_take(rx, 1));
    assert_int_equal(bn_buf_size(taken), sizeof vec);
    assert_int_equal((uintptr_t) bn_buf_data(taken) & 3u, 0);
    bn_buf_t *again = bn_buf_ref(taken);
    bn_msg_destroy(&rx);
    assert_null(rx);
    bn_buf_release(&taken);
    assert_memory_equal(bn_buf_data(again), vec, sizeof vec);   /* the reference outlives both */
    bn_buf_release(&again);
    assert_int_equal(bn_transport_recv(b, 2000, &rx), BN_OK);
    assert_int_equal(bn_msg_count(rx), 3);
    assert_memory_equal(bn_msg_frame(rx, 1, &len), "mid", 3);
    bn_msg_destroy(&rx);

    /* Nothing more: the receive times out after about its timeout. */
    double t0 = bn_now();
    assert_int_equal(bn_transport_recv(b, 100, &rx), BN_ETIMEOUT);
    assert_null(rx);
    double dt = bn_now() - t0;
    assert_true(dt >= 0.09 && dt < 1.0);

    const bn_transport_stats_t *st = bn_transport_stats(a);
    assert_int_equal(st->msgs_sent, 2);
    assert_int_equal(bn_transport_stats(b)->msgs_received, 2);
    s_pair_free(&pr);
    assert_null(pr.a);
    bn_transport_destroy(&pr.a);  /* safe twice */
}

static void test_full_queue_drops_without_blocking(void **state)
{
    (void) state;
    bn_transport_opts_t o = s_opts();
    s_pair_t pr;
    s_pair(&pr, &o);
    bn_transport_t *a = pr.a, *b = pr.b;
    bn_buf_t *payload = s_buf(400000, 0);
    double t0 = bn_now();
    int ok = 0, dropped = 0;
    for (int i = 0; i < 200; i++) {
        int rc = bn_transport_send(a, 1, "h", 1, NULL, 0, payload);
        if (rc == BN_OK)
            ok++;
        else if (rc == BN_ETIMEOUT)
            dropped++;
    }
    bn_buf_release(&payload);
    assert_true(bn_now() - t0 < 2.0);          /* never blocked */
    assert_true(dropped > 0);                  /* the queue is bounded */
    assert_int_equal(ok + dropped, 200);
    assert_int_equal(bn_transport_stats(a)->send_dropped, (uint64_t) dropped);
    /* What was accepted arrives. */
    int got = 0;
    bn_msg_t *rx;
    while (bn_transport_recv(b, 300, &rx) == BN_OK) {
        got++;
        bn_msg_destroy(&rx);
    }
    assert_int_equal(got, ok);
    s_pair_free(&pr);
}

static void test_curve_authenticates_listed_keys_only(void **state)
{
    (void) state;
    char pub[3][41], sec[3][41];
    for (int i = 0; i < 3; i++)
        assert_int_equal(zmq_curve_keypair(pub[i], sec[i]), 0);
    bn_swarm_t s;
    s_swarm(&s, 3, pub);
    bn_transport_opts_t o = s_opts();
    char err[256];
    o.secret_key = sec[0];
    bn_transport_t *a = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    o.secret_key = sec[1];
    bn_transport_t *b = bn_transport_new(&s, 1, NULL, &o, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    /* A node may not start with another node's key. */
    o.secret_key = sec[1];
    assert_null(bn_transport_new(&s, 2, NULL, &o, err, sizeof err));
    assert_non_null(strstr(err, "does not belong"));

    /* Listed node 0 -> node 1: delivered, authenticated as 0. */
    bn_buf_t *payload = s_buf(8, 0);
    assert_int_equal(bn_transport_send(a, 1, "hdr", 3, NULL, 0, payload), BN_OK);
    bn_msg_t *rx;
    assert_int_equal(bn_transport_recv(b, 3000, &rx), BN_OK);
    assert_int_equal(bn_msg_auth(rx), 0);
    bn_msg_destroy(&rx);

    /* An unlisted key never gets a message through. */
    char upub[41], usec[41];
    zmq_curve_keypair(upub, usec);
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(push, ZMQ_CURVE_SERVERKEY, pub[1], 40);
    zmq_setsockopt(push, ZMQ_CURVE_PUBLICKEY, upub, 40);
    zmq_setsockopt(push, ZMQ_CURVE_SECRETKEY, usec, 40);
    assert_int_equal(zmq_connect(push, s.nodes[1].endpoint), 0);
    zmq_send(push, "evil", 4, ZMQ_DONTWAIT | ZMQ_SNDMORE);
    zmq_send(push, "payload!", 8, ZMQ_DONTWAIT);
    /* A plain (no CURVE) client is refused by the CURVE server too. */
    void *plain = zmq_socket(ctx, ZMQ_PUSH);
    zmq_setsockopt(plain, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(plain, s.nodes[1].endpoint);
    zmq_send(plain, "evil", 4, ZMQ_DONTWAIT);
    assert_int_equal(bn_transport_recv(b, 1000, &rx), BN_ETIMEOUT);
    zmq_close(push);
    zmq_close(plain);
    zmq_ctx_term(ctx);
    bn_buf_release(&payload);
    bn_transport_destroy(&a);
    bn_transport_destroy(&b);
    free(s.nodes);
}

/* Resident set size of this process, kB (/proc/self/statm). */
static long s_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One peer sends a multipart message of 8,000 frames of 35 KB each (280 MB;
 * every frame under the bound, their sum far above it).  It is marked
 * oversize, none of its frames is kept, the next message still arrives, and
 * the process does not keep the memory: RSS after is within 64 MB of before
 * (it would be ~280 MB above without the per-message bound and the trim). */
static void test_oversize_multipart_is_dropped_without_growth(void **state)
{
    (void) state;
    bn_swarm_t s;
    s_swarm(&s, 2, NULL);
    bn_transport_opts_t o = s_opts();
    o.max_msg_size = 36 * 1024 + 4096;
    char err[256];
    bn_transport_t *b = bn_transport_new(&s, 1, NULL, &o, err, sizeof err);
    assert_non_null(b);
    long before = s_rss_kb();
    assert_true(before > 0);

    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int zero = 0, hwm = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    assert_int_equal(zmq_connect(push, s.nodes[1].endpoint), 0);
    size_t frame = 35 * 1024;
    char *chunk = calloc(1, frame);
    assert_non_null(chunk);
    assert_true(zmq_send(push, "hdr", 3, ZMQ_SNDMORE) >= 0);
    for (int i = 0; i < 8000; i++)
        assert_true(zmq_send(push, chunk, frame, i + 1 < 8000 ? ZMQ_SNDMORE : 0) >= 0);
    assert_true(zmq_send(push, "ok", 2, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(push, "fine", 4, 0) >= 0);
    free(chunk);

    bn_msg_t *rx = NULL;
    assert_int_equal(bn_transport_recv(b, 20000, &rx), BN_OK);
    assert_true(bn_msg_oversize(rx));
    assert_int_equal(bn_msg_count(rx), 8001);
    size_t len;
    assert_null(bn_msg_frame(rx, 0, &len));
    bn_msg_destroy(&rx);
    assert_int_equal(bn_transport_recv(b, 5000, &rx), BN_OK);
    assert_false(bn_msg_oversize(rx));
    assert_int_equal(bn_msg_count(rx), 2);
    assert_memory_equal(bn_msg_frame(rx, 1, &len), "fine", 4);
    bn_msg_destroy(&rx);
    assert_int_equal(bn_transport_stats(b)->oversize, 1);
    zmq_close(push);
    zmq_ctx_term(ctx);
    long after = s_rss_kb();
    print_message("RSS before %ld kB, after the 280 MB message %ld kB\n", before, after);
    bn_transport_destroy(&b);
#if !defined(__SANITIZE_ADDRESS__)
    /* (AddressSanitizer keeps freed memory in its quarantine: no bound there.) */
    assert_true(after - before < 64 * 1024);
#endif
    free(s.nodes);
}

/* Injected loss: every send is dropped with fault_drop 1, counted, never sent. */
static void test_fault_drop_inside_the_transport(void **state)
{
    (void) state;
    bn_transport_opts_t o = s_opts();
    o.fault_drop = 1.0;
    s_pair_t pr;
    s_pair(&pr, &o);
    bn_transport_t *a = pr.a, *b = pr.b;
    bn_buf_t *payload = s_buf(64, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bn_transport_send(a, 1, "h", 1, NULL, 0, payload), BN_OK);
    bn_buf_release(&payload);
    bn_msg_t *rx = NULL;
    assert_int_equal(bn_transport_recv(b, 300, &rx), BN_ETIMEOUT);
    assert_int_equal(bn_transport_stats(a)->fault_dropped, 5);
    assert_int_equal(bn_transport_stats(a)->msgs_sent, 0);
    s_pair_free(&pr);
}

/* Injected delay: a held message goes out from recv when due (not before),
 * with its middle frame and shared payload intact. */
static void test_fault_delay_sends_when_due(void **state)
{
    (void) state;
    bn_transport_opts_t o = s_opts();
    o.fault_delay_ms = 300;
    s_pair_t pr;
    s_pair(&pr, &o);
    bn_transport_t *a = pr.a, *b = pr.b;
    bn_buf_t *payload = s_buf(64, 7);
    assert_int_equal(bn_transport_send(a, 1, "head", 4, "mid", 3, payload), BN_OK);
    bn_buf_release(&payload);                /* the held message keeps its own reference */
    assert_int_equal(bn_transport_stats(a)->fault_delayed, 1);
    assert_int_equal(bn_transport_stats(a)->msgs_sent, 0);
    bn_msg_t *rx = NULL;
    /* a's own receive (nothing for it) is what sends the held message. */
    assert_int_equal(bn_transport_recv(a, 1000, &rx), BN_ETIMEOUT);
    assert_int_equal(bn_transport_stats(a)->msgs_sent, 1);
    assert_int_equal(bn_transport_recv(b, 2000, &rx), BN_OK);
    size_t len;
    assert_int_equal(bn_msg_count(rx), 3);
    assert_memory_equal(bn_msg_frame(rx, 0, &len), "head", 4);
    assert_memory_equal(bn_msg_frame(rx, 1, &len), "mid", 3);
    const unsigned char *pl = bn_msg_frame(rx, 2, &len);
    assert_int_equal(len, 64);
    assert_int_equal(pl[0], 7);
    assert_int_equal(pl[63], 7);
    bn_msg_destroy(&rx);
    s_pair_free(&pr);
}

/* A drain with a 60 s delay pending returns at once when stop is set, and
 * within about its poll step when stop is set later; the held message is
 * discarded (destroy releases it). */
static void test_drain_honours_stop(void **state)
{
    (void) state;
    bn_swarm_t s;
    s_swarm(&s, 2, NULL);
    bn_transport_opts_t o = s_opts();
    o.fault_delay_ms = 60000;
    char err[256];
    bn_transport_t *a = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    assert_non_null(a);
    bn_buf_t *payload = s_buf(16, 0);
    assert_int_equal(bn_transport_send(a, 1, "h", 1, NULL, 0, payload), BN_OK);
    bn_buf_release(&payload);
    volatile sig_atomic_t stop = 1;
    bn_transport_drain(a, &stop);            /* must return: the stop flag is set */
    assert_int_equal(bn_transport_stats(a)->msgs_sent, 0);
    bn_transport_destroy(&a);
    free(s.nodes);
}

/* The report to the monitor lingers only while a monitor is connected: with
 * none listening, closing the transport takes the short grace, not the 30 s
 * linger (nor the 2 s default); with one bound, the report still arrives. */
static void test_monitor_linger_follows_the_connection(void **state)
{
    (void) state;
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);     /* linger 2000 ms */
    char err[256];
    uint8_t hdr[4] = {1, 2, 3, 4};

    bn_swarm_t s;
    s_swarm(&s, 1, NULL);
    snprintf(s.monitor.endpoint, BN_ENDPOINT_MAX, "ipc://%s/absent-monitor", s_dir);
    bn_transport_t *t = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_transport_send(t, BN_PEER_MONITOR, hdr, sizeof hdr, NULL, 0, NULL), BN_OK);
    double t0 = bn_now();
    bn_transport_destroy(&t);
    double closing = bn_now() - t0;
    assert_true(closing < 1.0);        /* grace 0.2 s; was 30 s */

    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    snprintf(s.monitor.endpoint, BN_ENDPOINT_MAX, "ipc://%s/monitor", s_dir);
    assert_int_equal(zmq_bind(pull, s.monitor.endpoint), 0);
    t = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_transport_send(t, BN_PEER_MONITOR, hdr, sizeof hdr, NULL, 0, NULL), BN_OK);
    bn_transport_destroy(&t);
    int timeout = 5000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    uint8_t got[16];
    assert_int_equal(zmq_recv(pull, got, sizeof got, 0), (int) sizeof hdr);
    assert_memory_equal(got, hdr, sizeof hdr);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    free(s.nodes);
}

/* A monitor that is there but cannot greet yet (frozen here: SIGSTOP; on a
 * crowded host, starved of CPU): the node waits for the connection and then
 * lingers, so the report arrives once the monitor runs again (3 s later),
 * where the ordinary 2 s linger lost it.  A socket file nobody listens on
 * (a dead monitor) refuses the connect: closing takes the ordinary linger,
 * not the 30 s wait. */
static void test_monitor_report_waits_for_a_slow_connection(void **state)
{
    (void) state;
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);     /* linger 2000 ms */
    char err[256];
    uint8_t hdr[4] = {5, 6, 7, 8};
    bn_swarm_t s;
    s_swarm(&s, 1, NULL);
    snprintf(s.monitor.endpoint, BN_ENDPOINT_MAX, "ipc://%s/slow-monitor", s_dir);

    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t mon = fork();
    assert_true(mon >= 0);
    if (mon == 0) {                    /* the monitor: exit 0 iff the report comes */
        void *ctx = zmq_ctx_new();
        void *pull = zmq_socket(ctx, ZMQ_PULL);
        int timeout = 20000;
        zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        if (zmq_bind(pull, s.monitor.endpoint) != 0)
            _exit(2);
        (void) !write(ready[1], "r", 1);
        uint8_t got[16];
        int n = zmq_recv(pull, got, sizeof got, 0);
        _exit(n == (int) sizeof hdr && memcmp(got, hdr, sizeof hdr) == 0 ? 0 : 1);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    kill(mon, SIGSTOP);
    pid_t waker = fork();
    assert_true(waker >= 0);
    if (waker == 0) {
        sleep(3);
        kill(mon, SIGCONT);
        _exit(0);
    }
    bn_transport_t *t = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_transport_send(t, BN_PEER_MONITOR, hdr, sizeof hdr, NULL, 0, NULL), BN_OK);
    bn_transport_destroy(&t);
    int st;
    assert_int_equal(waitpid(waker, &st, 0), waker);
    assert_int_equal(waitpid(mon, &st, 0), mon);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);     /* the report arrived */

    /* a socket file nobody listens on */
    snprintf(s.monitor.endpoint, BN_ENDPOINT_MAX, "ipc://%s/dead-monitor", s_dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    assert_true(strlen(s.monitor.endpoint + 6) < sizeof sa.sun_path);
    memcpy(sa.sun_path, s.monitor.endpoint + 6, strlen(s.monitor.endpoint + 6) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    close(fd);                         /* the file stays, refusing connects */
    t = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_transport_send(t, BN_PEER_MONITOR, hdr, sizeof hdr, NULL, 0, NULL), BN_OK);
    double t0 = bn_now();
    bn_transport_destroy(&t);
    double closing = bn_now() - t0;
    assert_true(closing < 10.0);       /* the 2 s linger, not the 30 s wait */
    unlink(sa.sun_path);
    free(s.nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_and_receive),
        cmocka_unit_test(test_full_queue_drops_without_blocking),
        cmocka_unit_test(test_curve_authenticates_listed_keys_only),
        cmocka_unit_test(test_oversize_multipart_is_dropped_without_growth),
        cmocka_unit_test(test_fault_drop_inside_the_transport),
        cmocka_unit_test(test_fault_delay_sends_when_due),
        cmocka_unit_test(test_drain_honours_stop),
        cmocka_unit_test(test_monitor_linger_follows_the_connection),
        cmocka_unit_test(test_monitor_report_waits_for_a_slow_connection),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
