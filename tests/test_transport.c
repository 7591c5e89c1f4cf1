/*  test_transport.c -- loopback sockets: delivery, timeouts, drop-don't-block,
 *  CURVE authentication (listed key, unlisted key, authenticated id). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport.h"

static char s_dir[64];

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
    snprintf(s_dir, sizeof s_dir, "/tmp/bn-test-transport-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void) state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_send_and_receive(void **state)
{
    (void) state;
    bn_swarm_t s;
    s_swarm(&s, 2, NULL);
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);
    char err[256];
    bn_transport_t *a = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    bn_transport_t *b = bn_transport_new(&s, 1, NULL, &o, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);

    float vec[1000];
    for (int i = 0; i < 1000; i++)
        vec[i] = (float) i * 0.5f;
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, sizeof vec);
    memcpy(zmq_msg_data(&payload), vec, sizeof vec);
    assert_int_equal(bn_transport_send(a, 1, "hdr", 3, NULL, 0, &payload), BN_OK);
    assert_int_equal(bn_transport_send(a, 1, "second", 6, "mid", 3, &payload), BN_OK);
    zmq_msg_close(&payload);

    bn_rx_t rx;
    assert_int_equal(bn_transport_recv(b, 2000, &rx), BN_OK);
    assert_int_equal(rx.n, 2);
    assert_int_equal(zmq_msg_size(&rx.frames[0]), 3);
    assert_memory_equal(zmq_msg_data(&rx.frames[0]), "hdr", 3);
    assert_int_equal(zmq_msg_size(&rx.frames[1]), sizeof vec);
    assert_memory_equal(zmq_msg_data(&rx.frames[1]), vec, sizeof vec);
    assert_int_equal(rx.auth_id, BN_AUTH_NONE);
    bn_rx_close(&rx);
    assert_int_equal(bn_transport_recv(b, 2000, &rx), BN_OK);
    assert_int_equal(rx.n, 3);
    assert_memory_equal(zmq_msg_data(&rx.frames[1]), "mid", 3);
    bn_rx_close(&rx);

    /* Nothing more: the receive times out after about its timeout. */
    double t0 = bn_now();
    assert_int_equal(bn_transport_recv(b, 100, &rx), BN_ETIMEOUT);
    double dt = bn_now() - t0;
    assert_true(dt >= 0.09 && dt < 1.0);

    const bn_transport_stats_t *st = bn_transport_stats(a);
    assert_int_equal(st->msgs_sent, 2);
    assert_int_equal(bn_transport_stats(b)->msgs_received, 2);
    bn_transport_destroy(&a);
    bn_transport_destroy(&b);
    assert_null(a);
    bn_transport_destroy(&a);  /* safe twice */
    free(s.nodes);
}

static void test_full_queue_drops_without_blocking(void **state)
{
    (void) state;
    bn_swarm_t s;
    s_swarm(&s, 2, NULL);
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);
    o.linger_ms = 0;
    char err[256];
    bn_transport_t *a = bn_transport_new(&s, 0, NULL, &o, err, sizeof err);
    bn_transport_t *b = bn_transport_new(&s, 1, NULL, &o, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, 400000);
    memset(zmq_msg_data(&payload), 0, 400000);
    double t0 = bn_now();
    int ok = 0, dropped = 0;
    for (int i = 0; i < 200; i++) {
        int rc = bn_transport_send(a, 1, "h", 1, NULL, 0, &payload);
        if (rc == BN_OK)
            ok++;
        else if (rc == BN_ETIMEOUT)
            dropped++;
    }
    zmq_msg_close(&payload);
    assert_true(bn_now() - t0 < 2.0);          /* never blocked */
    assert_true(dropped > 0);                  /* the queue is bounded */
    assert_int_equal(ok + dropped, 200);
    assert_int_equal(bn_transport_stats(a)->send_dropped, (uint64_t) dropped);
    /* What was accepted arrives. */
    int got = 0;
    bn_rx_t rx;
    while (bn_transport_recv(b, 300, &rx) == BN_OK) {
        got++;
        bn_rx_close(&rx);
    }
    assert_int_equal(got, ok);
    bn_transport_destroy(&a);
    bn_transport_destroy(&b);
    free(s.nodes);
}

static void test_curve_authenticates_listed_keys_only(void **state)
{
    (void) state;
    char pub[3][41], sec[3][41];
    for (int i = 0; i < 3; i++)
        assert_int_equal(zmq_curve_keypair(pub[i], sec[i]), 0);
    bn_swarm_t s;
    s_swarm(&s, 3, pub);
    bn_transport_opts_t o;
    bn_transport_opts_default(&o);
    o.linger_ms = 0;
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
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, 8);
    memset(zmq_msg_data(&payload), 0, 8);
    assert_int_equal(bn_transport_send(a, 1, "hdr", 3, NULL, 0, &payload), BN_OK);
    bn_rx_t rx;
    assert_int_equal(bn_transport_recv(b, 3000, &rx), BN_OK);
    assert_int_equal(rx.auth_id, 0);
    bn_rx_close(&rx);

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
    zmq_msg_close(&payload);
    bn_transport_destroy(&a);
    bn_transport_destroy(&b);
    free(s.nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_and_receive),
        cmocka_unit_test(test_full_queue_drops_without_blocking),
        cmocka_unit_test(test_curve_authenticates_listed_keys_only),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
