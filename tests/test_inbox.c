/*  test_inbox.c -- message admission, every drop reason, the early-message
 *  ring, giving up on and taking back neighbours, and the catch-up quorum
 *  (a Byzantine minority cannot drag a node ahead).
 *
 *  Node 0 of a 5-node swarm whose graph (an edge-list file) is
 *      0-1  0-2  0-3  1-4          (node 4 is not node 0's neighbour)
 *  dim 4, window W = 4, R = 10 rounds per epoch, 3 epochs (rounds 0..29),
 *  b = 1, so the catch-up quorum is min(b + 1, degree 3) = 2.  Messages are
 *  built with bn_msg_new, as the transport would hand them over.
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

#include "graphs.h"
#include "inbox.h"
#include "transport.h"
#include "wire.h"

#define S_N     5
#define S_DIM   4
#define S_W     4
#define S_R     10
#define S_E     3
#define S_SWARM 0x5157ull
#define S_CFG   0xc0f1ull

static char s_edges[64];
static bn_graphs_t *s_graphs;
static uint64_t s_fp;          /* the graph's fingerprint */

static int s_setup(void **state)
{
    (void) state;
    snprintf(s_edges, sizeof s_edges, "/tmp/bn-test-inbox-XXXXXX");
    int fd = mkstemp(s_edges);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "0 1\n0 2\n0 3\n1 4\n");
    fclose(f);
    bn_graphs_opts_t go = { S_N, s_edges, 0, 0, 1, false };
    s_graphs = bn_graphs_new(&go);
    if (!s_graphs)
        return -1;
    const bn_topology_t *g = bn_graphs_get(s_graphs, 0);
    if (!g)
        return -1;
    s_fp = g->fingerprint;
    return 0;
}

static int s_teardown(void **state)
{
    (void) state;
    bn_graphs_destroy(&s_graphs);
    unlink(s_edges);
    return 0;
}

static bn_inbox_t *s_inbox(bool curve, const bool *is_byz)
{
    bn_inbox_opts_t o = { S_N, 0, S_DIM, S_W, S_R, S_E, 1, S_SWARM, S_CFG, curve, is_byz, s_graphs };
    bn_inbox_t *ib = bn_inbox_new(&o);
    assert_non_null(ib);
    bn_inbox_begin_round(ib, 0, bn_graphs_get(s_graphs, 0));
    return ib;
}

/* A valid MODEL header from `from` for `round`. */
static bn_wire_header_t s_hdr(uint32_t from, uint64_t round)
{
    bn_wire_header_t h = { .version = BN_WIRE_VERSION, .kind = BN_MSG_MODEL, .swarm_id = S_SWARM,
                           .sender = from, .epoch = (uint32_t) (round / S_R), .round = round,
                           .topology = s_fp, .config = S_CFG, .dtype = BN_DTYPE_F32, .dim = S_DIM,
                           .origin = from };
    return h;
}

/* Admits [header][payload of S_DIM floats = value] with the given auth id. */
static bn_drop_reason_t s_admit_full(bn_inbox_t *ib, const bn_wire_header_t *h, float value,
                                     size_t plen, uint32_t auth)
{
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0;
    assert_int_equal(bn_wire_encode(h, hb, sizeof hb, &hlen), BN_OK);
    float p[16];
    for (int i = 0; i < 16; i++)
        p[i] = value;
    const void *frames[2] = { hb, p };
    size_t lens[2] = { hlen, plen };
    bn_msg_t *m = bn_msg_new(2, frames, lens, auth, false);
    assert_non_null(m);
    bn_drop_reason_t why = bn_inbox_admit(ib, m);
    bn_msg_destroy(&m);
    return why;
}

static bn_drop_reason_t s_admit(bn_inbox_t *ib, const bn_wire_header_t *h, float value)
{
    return s_admit_full(ib, h, value, S_DIM * sizeof(float), BN_AUTH_NONE);
}

/* A released payload (bn_inbox_release, after a streaming rule consumed
 * it): the model still counts as arrived for liveness and duplicates, only
 * its bytes are gone; payloads_max and early count what was held. */
static void test_release_keeps_arrival(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    bn_wire_header_t h = s_hdr(1, 0);
    assert_int_equal(s_admit(ib, &h, 2.5f), BN_DROP_NONE);
    h = s_hdr(2, 0);
    assert_int_equal(s_admit(ib, &h, 1.5f), BN_DROP_NONE);
    h = s_hdr(2, 1);                                   /* next round: early */
    assert_int_equal(s_admit(ib, &h, 0.5f), BN_DROP_NONE);
    assert_int_equal(bn_inbox_stats(ib)->payloads_max, 3);
    assert_int_equal(bn_inbox_stats(ib)->early, 1);
    bn_inbox_release(ib, 0, 1);
    bn_inbox_release(ib, 0, 1);                        /* twice: no effect */
    bn_inbox_release(ib, 0, 3);                        /* never came: no effect */
    assert_null(bn_inbox_model(ib, 0, 1));
    assert_null(bn_inbox_model_buf(ib, 0, 1));
    assert_true(bn_inbox_has(ib, 0, 1));
    assert_false(bn_inbox_has(ib, 0, 3));
    assert_non_null(bn_inbox_model(ib, 0, 2));
    /* a duplicate of the released model is still a duplicate */
    h = s_hdr(1, 0);
    assert_int_equal(s_admit(ib, &h, 9.0f), BN_DROP_DUPLICATE);
    assert_null(bn_inbox_model(ib, 0, 1));
    /* closing the round: 1 and 2 arrived, 3 missed it */
    uint32_t nbr[3] = { 1, 2, 3 };
    assert_int_equal(bn_inbox_close_round(ib, 0, nbr, 3), 1);
    h = s_hdr(1, 1);
    assert_int_equal(s_admit(ib, &h, 3.0f), BN_DROP_NONE);
    assert_int_equal(bn_inbox_stats(ib)->payloads_max, 3);   /* 2 held + 1 */
    bn_inbox_begin_round(ib, 1, bn_graphs_get(s_graphs, 0));
    assert_false(bn_inbox_has(ib, 0, 1));
    assert_true(bn_inbox_has(ib, 1, 1) && bn_inbox_has(ib, 1, 2));
    assert_true(bn_inbox_model(ib, 1, 2)[0] == 0.5f);
    bn_inbox_release(ib, 1, 2);
    assert_true(bn_inbox_waits_for(ib, 1));
    bn_inbox_destroy(&ib);
}

/* ---- admission --------------------------------------------------------- */

static void test_valid_model_is_kept(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    bn_wire_header_t h = s_hdr(1, 0);
    assert_int_equal(s_admit(ib, &h, 2.5f), BN_DROP_NONE);
    const float *x = bn_inbox_model(ib, 0, 1);
    assert_non_null(x);
    assert_true(x[0] == 2.5f && x[S_DIM - 1] == 2.5f);
    assert_null(bn_inbox_model(ib, 0, 2));
    assert_null(bn_inbox_model(ib, 1, 1));
    /* early messages wait in the ring: rounds 1 .. W - 1 */
    h = s_hdr(2, S_W - 1);
    assert_int_equal(s_admit(ib, &h, 1.0f), BN_DROP_NONE);
    assert_non_null(bn_inbox_model(ib, S_W - 1, 2));
    /* a round ends: older slots are released, later ones stay */
    bn_inbox_begin_round(ib, 1, bn_graphs_get(s_graphs, 0));
    assert_null(bn_inbox_model(ib, 0, 1));
    assert_non_null(bn_inbox_model(ib, S_W - 1, 2));
    for (int k = 0; k < BN_DROP_COUNT; k++)
        assert_int_equal(bn_inbox_stats(ib)->drops[k], 0);
    bn_inbox_destroy(&ib);
    assert_null(ib);
    bn_inbox_destroy(&ib);     /* safe twice */
}

static void s_expect_drop(bn_inbox_t *ib, bn_drop_reason_t got, bn_drop_reason_t want)
{
    assert_int_equal(got, want);
    assert_true(bn_inbox_stats(ib)->drops[want] >= 1);
}

static void test_every_drop_reason(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    bn_inbox_begin_round(ib, 12, bn_graphs_get(s_graphs, 1));   /* epoch 1, round 12 */
    bn_wire_header_t h;
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen;
    float p[S_DIM] = { 0 };

    /* size: the transport said the whole message was too big */
    bn_msg_t *m = bn_msg_new(2, NULL, NULL, BN_AUTH_NONE, true);
    s_expect_drop(ib, bn_inbox_admit(ib, m), BN_DROP_SIZE);
    bn_msg_destroy(&m);
    /* frames: one frame, and three */
    h = s_hdr(1, 12);
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    const void *f3[3] = { hb, p, p };
    size_t l3[3] = { hlen, sizeof p, sizeof p };
    m = bn_msg_new(1, f3, l3, BN_AUTH_NONE, false);
    s_expect_drop(ib, bn_inbox_admit(ib, m), BN_DROP_FRAMES);
    bn_msg_destroy(&m);
    m = bn_msg_new(3, f3, l3, BN_AUTH_NONE, false);
    s_expect_drop(ib, bn_inbox_admit(ib, m), BN_DROP_FRAMES);
    bn_msg_destroy(&m);
    /* header: not MessagePack */
    const void *fg[2] = { "garbage", p };
    size_t lg[2] = { 7, sizeof p };
    m = bn_msg_new(2, fg, lg, BN_AUTH_NONE, false);
    s_expect_drop(ib, bn_inbox_admit(ib, m), BN_DROP_HEADER);
    bn_msg_destroy(&m);
    /* header: epoch is not round / R */
    h = s_hdr(1, 12); h.epoch = 0;
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_HEADER);
    h = s_hdr(1, 12); h.version = BN_WIRE_VERSION + 1;
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_VERSION);
    h = s_hdr(1, 12); h.kind = 9;
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_KIND);
    h = s_hdr(1, 12); h.kind = BN_MSG_REPORT;           /* REPORTs are the monitor's */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_KIND);
    h = s_hdr(1, 12); h.kind = BN_MSG_COLLUDE; h.origin = 2;   /* an honest node takes no relay */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_KIND);
    h = s_hdr(1, 12); h.swarm_id ^= 1;
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_SWARM);
    h = s_hdr(0, 12);                                    /* our own id */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_SENDER);
    h = s_hdr(S_N, 12);                                  /* not in the swarm */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_SENDER);
    h = s_hdr(1, 12); h.config ^= 1;                     /* another configuration */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_CONFIG);
    h = s_hdr(1, 12); h.dtype = 2;
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_DTYPE);
    h = s_hdr(1, 12); h.dim = S_DIM + 1;
    s_expect_drop(ib, s_admit_full(ib, &h, 0, (S_DIM + 1) * 4, BN_AUTH_NONE), BN_DROP_DIM);
    h = s_hdr(1, 12);                                    /* payload shorter than dim */
    s_expect_drop(ib, s_admit_full(ib, &h, 0, S_DIM * 4 - 4, BN_AUTH_NONE), BN_DROP_DIM);
    s_expect_drop(ib, s_admit(ib, &h, NAN), BN_DROP_NONFINITE);
    s_expect_drop(ib, s_admit(ib, &h, INFINITY), BN_DROP_NONFINITE);
    h = s_hdr(1, 12);                                    /* auth: claims 1, key of 2 */
    s_expect_drop(ib, s_admit_full(ib, &h, 0, S_DIM * 4, 2), BN_DROP_AUTH);
    h = s_hdr(1, 11);                                    /* finished round */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_STALE);
    h = s_hdr(1, 2);                                     /* long finished (epoch 0) */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_STALE);
    h = s_hdr(1, 12 + S_W);                              /* first round beyond the window */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_FUTURE);
    h = s_hdr(1, S_R * S_E);                             /* beyond the run */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_FUTURE);
    h = s_hdr(4, 12);                                    /* listed, not adjacent */
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_NOT_NEIGHBOR);
    h = s_hdr(1, 12); h.topology ^= 1;
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_TOPOLOGY);
    h = s_hdr(1, 13);
    assert_int_equal(s_admit(ib, &h, 1.0f), BN_DROP_NONE);
    s_expect_drop(ib, s_admit(ib, &h, 2.0f), BN_DROP_DUPLICATE);
    assert_true(bn_inbox_model(ib, 13, 1)[0] == 1.0f);   /* the first one stays */
    /* none of the bad ones reached a slot */
    for (uint32_t j = 1; j < S_N; j++)
        for (uint64_t r = 12; r < 12 + S_W; r++)
            if (!(j == 1 && r == 13))
                assert_null(bn_inbox_model(ib, r, j));
    uint64_t total = 0;
    for (int k = 0; k < BN_DROP_COUNT; k++)
        total += bn_inbox_stats(ib)->drops[k];
    assert_int_equal(total, 26);
    bn_inbox_destroy(&ib);
}

/* CURVE: a message without an authenticated sender is refused. */
static void test_curve_requires_auth(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(true, NULL);
    bn_wire_header_t h = s_hdr(1, 0);
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_AUTH);
    assert_int_equal(s_admit_full(ib, &h, 0, S_DIM * 4, 1), BN_DROP_NONE);
    bn_inbox_destroy(&ib);
}

/* Attackers take relays (COLLUDE) from fellow attackers, for honest origins
 * the relay can hear, keyed by origin. */
static void test_collude_for_attackers(void **state)
{
    (void) state;
    bool byz[S_N] = { true, true, false, false, false };   /* 0 and 1 attack */
    bn_inbox_t *ib = s_inbox(false, byz);
    bn_wire_header_t h = s_hdr(1, 0);
    h.kind = BN_MSG_COLLUDE;
    h.origin = 4;                                        /* 1 hears 4 */
    assert_int_equal(s_admit(ib, &h, 3.0f), BN_DROP_NONE);
    assert_non_null(bn_inbox_relay(ib, 0, 4));
    assert_null(bn_inbox_model(ib, 0, 1));
    h.origin = 2;                                        /* 1 does not hear 2 */
    s_expect_drop(ib, s_admit(ib, &h, 3.0f), BN_DROP_KIND);
    /* an empty COLLUDE: the relay has no model of its origin this round;
     * settled (nothing to wait for), no model; a real one is settled too */
    assert_true(bn_inbox_relay_settled(ib, 0, 4));
    h = s_hdr(1, 1);
    h.kind = BN_MSG_COLLUDE;
    h.origin = 4;
    assert_false(bn_inbox_relay_settled(ib, 1, 4));
    h.dim = 0;
    assert_int_equal(s_admit_full(ib, &h, 0, 0, BN_AUTH_NONE), BN_DROP_NONE);
    assert_true(bn_inbox_relay_settled(ib, 1, 4));
    assert_null(bn_inbox_relay(ib, 1, 4));
    assert_false(bn_inbox_relay_settled(ib, 2, 4));      /* for that round only */
    assert_false(bn_inbox_relay_settled(ib, 1, S_N));    /* out of range */
    h.dim = S_DIM;                                       /* a model after it is taken */
    assert_int_equal(s_admit(ib, &h, 3.0f), BN_DROP_NONE);
    assert_non_null(bn_inbox_relay(ib, 1, 4));
    h.dim = 0;                                           /* and an empty one then is a duplicate */
    s_expect_drop(ib, s_admit_full(ib, &h, 0, 0, BN_AUTH_NONE), BN_DROP_DUPLICATE);
    assert_non_null(bn_inbox_relay(ib, 1, 4));
    h = s_hdr(2, 0);
    h.kind = BN_MSG_COLLUDE;                             /* from an honest node */
    h.origin = 3;
    s_expect_drop(ib, s_admit(ib, &h, 3.0f), BN_DROP_KIND);
    bn_inbox_destroy(&ib);
}

/* ---- liveness ---------------------------------------------------------- */

static void s_round(bn_inbox_t *ib, uint64_t r)
{
    bn_inbox_begin_round(ib, r, bn_graphs_get(s_graphs, (uint32_t) (r / S_R)));
}

static void test_give_up_and_take_back(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    const uint32_t nbr[3] = { 1, 2, 3 };
    bn_wire_header_t h;
    for (uint64_t r = 0; r < 2; r++) {
        s_round(ib, r);
        h = s_hdr(1, r); s_admit(ib, &h, 0);
        h = s_hdr(2, r); s_admit(ib, &h, 0);
        assert_int_equal(bn_inbox_close_round(ib, r, nbr, 3), 1);   /* 3 is silent */
    }
    assert_false(bn_inbox_waits_for(ib, 3));
    assert_true(bn_inbox_waits_for(ib, 1));
    assert_int_equal(bn_inbox_stats(ib)->peers_given_up, 1);
    /* One miss is not enough; two in a row are. */
    s_round(ib, 2);
    assert_int_equal(bn_inbox_close_round(ib, 2, nbr, 3), 3);
    assert_true(bn_inbox_waits_for(ib, 1));
    assert_true(bn_inbox_waits_for(ib, 2));
    s_round(ib, 3);
    assert_int_equal(bn_inbox_close_round(ib, 3, nbr, 3), 3);
    assert_false(bn_inbox_waits_for(ib, 1));
    assert_false(bn_inbox_waits_for(ib, 2));
    assert_int_equal(bn_inbox_stats(ib)->peers_given_up, 3);    /* 1 and 2 now too */
    assert_int_equal(bn_inbox_close_round(ib, 3, nbr, 3), 3);   /* still missing, */
    assert_int_equal(bn_inbox_stats(ib)->peers_given_up, 3);    /* given up once */

    /* 3's model for round 6 (ahead, in the window) arrives during round 4:
     * it is kept, but 3 is waited for only from round 6 on (it skipped or
     * finished the rounds before). */
    s_round(ib, 4);
    h = s_hdr(3, 6);
    assert_int_equal(s_admit(ib, &h, 0), BN_DROP_NONE);
    assert_false(bn_inbox_waits_for(ib, 3));
    s_round(ib, 5);
    assert_false(bn_inbox_waits_for(ib, 3));
    s_round(ib, 6);
    assert_true(bn_inbox_waits_for(ib, 3));
    assert_int_equal(bn_inbox_stats(ib)->peers_restored, 1);
    /* 1's model for the current round restores it at once. */
    h = s_hdr(1, 6);
    assert_int_equal(s_admit(ib, &h, 0), BN_DROP_NONE);
    assert_true(bn_inbox_waits_for(ib, 1));
    assert_int_equal(bn_inbox_stats(ib)->peers_restored, 2);
    /* 2 is just behind (stale by one round, less than the window): dropped,
     * but waited for again from our next round. */
    h = s_hdr(2, 5);
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_STALE);
    assert_false(bn_inbox_waits_for(ib, 2));
    s_round(ib, 7);
    assert_true(bn_inbox_waits_for(ib, 2));
    assert_int_equal(bn_inbox_stats(ib)->peers_restored, 3);
    bn_inbox_destroy(&ib);
}

static void test_catch_up_needs_a_quorum(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    s_round(ib, 2);
    bn_wire_header_t h = s_hdr(1, 15);
    s_expect_drop(ib, s_admit(ib, &h, 0), BN_DROP_FUTURE);
    assert_int_equal(bn_inbox_catch_up(ib), UINT64_MAX);       /* one of 2 */
    h = s_hdr(1, 17);                                           /* the same neighbour again */
    s_admit(ib, &h, 0);
    assert_int_equal(bn_inbox_catch_up(ib), UINT64_MAX);
    h = s_hdr(2, 14);
    s_admit(ib, &h, 0);
    /* two neighbours at >= 14: skip to 14, where an honest one has been */
    assert_int_equal(bn_inbox_catch_up(ib), 14);
    /* a non-neighbour or an invalid message does not count */
    bn_inbox_destroy(&ib);
    ib = s_inbox(false, NULL);
    s_round(ib, 2);
    h = s_hdr(1, 15);
    s_admit(ib, &h, 0);
    h = s_hdr(4, 15);                                           /* not adjacent */
    s_admit(ib, &h, 0);
    h = s_hdr(2, 15); h.topology ^= 1;                          /* wrong graph */
    s_admit(ib, &h, 0);
    h = s_hdr(3, 15); h.config ^= 1;                            /* wrong configuration */
    s_admit(ib, &h, 0);
    assert_int_equal(bn_inbox_catch_up(ib), UINT64_MAX);
    bn_inbox_destroy(&ib);
}

/* b = 1: one neighbour claiming the run's last round cannot move the node
 * there; with an honest neighbour really at 15 the node goes to 15. */
static void test_byzantine_minority_cannot_drag(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    s_round(ib, 1);
    bn_wire_header_t h = s_hdr(3, S_R * S_E - 1);              /* the liar: round 29 */
    s_admit(ib, &h, 0);
    assert_int_equal(bn_inbox_catch_up(ib), UINT64_MAX);
    h = s_hdr(1, 15);                                           /* honest */
    s_admit(ib, &h, 0);
    assert_int_equal(bn_inbox_catch_up(ib), 15);
    /* a second neighbour at 28: now two say >= 28, still not the liar's 29 */
    h = s_hdr(2, S_R * S_E - 2);
    s_admit(ib, &h, 0);
    assert_int_equal(bn_inbox_catch_up(ib), S_R * S_E - 2);
    bn_inbox_destroy(&ib);
}

/* The jump: the remembered far models of the target's window go into their
 * slots; a neighbour remembered at the target is waited for at once, one
 * remembered beyond it from that round on; the memory is cleared. */
static void test_jump_restores_the_quorum(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    const uint32_t nbr[3] = { 1, 2, 3 };
    for (uint64_t r = 0; r < 2; r++) {
        s_round(ib, r);
        bn_inbox_close_round(ib, r, nbr, 3);
    }
    assert_false(bn_inbox_waits_for(ib, 1));
    bn_wire_header_t h = s_hdr(1, 20);
    s_admit(ib, &h, 1.5f);
    h = s_hdr(2, 21);
    s_admit(ib, &h, 2.5f);
    uint64_t t = bn_inbox_catch_up(ib);
    assert_int_equal(t, 20);
    bn_inbox_jump(ib, t);
    assert_true(bn_inbox_model(ib, 20, 1)[0] == 1.5f);
    assert_true(bn_inbox_model(ib, 21, 2)[0] == 2.5f);
    assert_true(bn_inbox_waits_for(ib, 1));
    assert_false(bn_inbox_waits_for(ib, 2));                    /* its 20 is gone */
    assert_false(bn_inbox_waits_for(ib, 3));                    /* never seen */
    s_round(ib, t);
    assert_int_equal(bn_inbox_catch_up(ib), UINT64_MAX);
    assert_false(bn_inbox_waits_for(ib, 2));
    s_round(ib, t + 1);
    assert_true(bn_inbox_waits_for(ib, 2));
    assert_int_equal(bn_inbox_stats(ib)->peers_restored, 2);
    /* their next models are in the window again */
    h = s_hdr(1, t + 1);
    assert_int_equal(s_admit(ib, &h, 0), BN_DROP_NONE);
    bn_inbox_destroy(&ib);
}

/* A peer sends in round order over one connection: once its model two
 * rounds ahead is here, this round's was lost -- not waited for, and not a
 * miss (the peer is alive). */
static void test_lost_round_is_not_waited_for(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    const uint32_t nbr[3] = { 1, 2, 3 };
    s_round(ib, 4);
    bn_wire_header_t h = s_hdr(1, 5);                          /* one ahead: still waited for */
    assert_int_equal(s_admit(ib, &h, 0), BN_DROP_NONE);
    assert_true(bn_inbox_waits_for(ib, 1));
    h = s_hdr(1, 6);                                            /* two ahead: round 4's is lost */
    assert_int_equal(s_admit(ib, &h, 0), BN_DROP_NONE);
    assert_false(bn_inbox_waits_for(ib, 1));
    for (int k = 0; k < 3; k++)                                 /* three rounds without it */
        assert_int_equal(bn_inbox_close_round(ib, 4, nbr, 3), 3);
    assert_int_equal(bn_inbox_stats(ib)->peers_given_up, 2);   /* 2 and 3, not 1 */
    s_round(ib, 6);
    assert_true(bn_inbox_waits_for(ib, 1));
    assert_non_null(bn_inbox_model(ib, 6, 1));
    bn_inbox_destroy(&ib);
}

/* A neighbour whose model is not finite (diverged, or hostile) has spoken
 * for its round: the round does not wait for it (no round timeout), it
 * counts as missing, it is given up after two such rounds like a silent one,
 * and only a valid model takes it back.  A forged one (another sender under
 * CURVE) or one for a round outside the window changes nothing. */
static void test_nonfinite_model_is_not_waited_for(void **state)
{
    (void) state;
    bn_inbox_t *ib = s_inbox(false, NULL);
    const uint32_t nbr[3] = { 1, 2, 3 };
    bn_wire_header_t h;
    for (uint64_t r = 0; r < 2; r++) {
        s_round(ib, r);
        assert_true(bn_inbox_waits_for(ib, 1));
        h = s_hdr(1, r);
        s_expect_drop(ib, s_admit(ib, &h, NAN), BN_DROP_NONFINITE);
        assert_false(bn_inbox_waits_for(ib, 1));
        assert_true(bn_inbox_live(ib, 1));
        assert_null(bn_inbox_model(ib, r, 1));
        assert_true(bn_inbox_waits_for(ib, 2));
        h = s_hdr(2, r); s_admit(ib, &h, 0);
        h = s_hdr(3, r); s_admit(ib, &h, 0);
        assert_int_equal(bn_inbox_close_round(ib, r, nbr, 3), 1);   /* 1 is missing */
    }
    assert_false(bn_inbox_live(ib, 1));                             /* given up */
    assert_int_equal(bn_inbox_stats(ib)->peers_given_up, 1);
    /* another non-finite one does not take it back; a valid one does */
    s_round(ib, 2);
    h = s_hdr(1, 2);
    s_admit(ib, &h, INFINITY);
    assert_false(bn_inbox_live(ib, 1));
    s_round(ib, 3);
    h = s_hdr(1, 3);
    assert_int_equal(s_admit(ib, &h, 1.0f), BN_DROP_NONE);
    assert_true(bn_inbox_waits_for(ib, 1));
    assert_int_equal(bn_inbox_stats(ib)->peers_restored, 1);
    /* a non-finite model for a later round of the window counts in that round */
    h = s_hdr(2, 5);
    s_admit(ib, &h, NAN);
    assert_true(bn_inbox_waits_for(ib, 2));
    s_round(ib, 5);
    assert_false(bn_inbox_waits_for(ib, 2));
    /* a valid model that came first stands */
    h = s_hdr(3, 5); s_admit(ib, &h, 0);
    h = s_hdr(3, 5); s_admit(ib, &h, NAN);
    assert_non_null(bn_inbox_model(ib, 5, 3));
    /* non-finite models far beyond the window are no evidence that the
     * neighbours are ahead (no catch-up, nothing kept); valid ones are */
    uint64_t far = 5 + 2 * S_W;
    for (uint32_t j = 1; j <= 3; j++) {
        h = s_hdr(j, far);
        s_expect_drop(ib, s_admit(ib, &h, NAN), BN_DROP_NONFINITE);
    }
    assert_true(bn_inbox_catch_up(ib) == UINT64_MAX);
    for (uint32_t j = 1; j <= 3; j++) {
        h = s_hdr(j, far);
        s_expect_drop(ib, s_admit(ib, &h, 1.0f), BN_DROP_FUTURE);
    }
    assert_true(bn_inbox_catch_up(ib) != UINT64_MAX);
    bn_inbox_destroy(&ib);
    /* under CURVE, a non-finite model claiming node 1 but sent by node 2 */
    ib = s_inbox(true, NULL);
    h = s_hdr(1, 0);
    s_admit_full(ib, &h, NAN, S_DIM * sizeof(float), 2);
    assert_true(bn_inbox_waits_for(ib, 1));
    s_admit_full(ib, &h, NAN, S_DIM * sizeof(float), 1);
    assert_false(bn_inbox_waits_for(ib, 1));
    bn_inbox_destroy(&ib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_model_is_kept),
        cmocka_unit_test(test_release_keeps_arrival),
        cmocka_unit_test(test_every_drop_reason),
        cmocka_unit_test(test_curve_requires_auth),
        cmocka_unit_test(test_collude_for_attackers),
        cmocka_unit_test(test_give_up_and_take_back),
        cmocka_unit_test(test_catch_up_needs_a_quorum),
        cmocka_unit_test(test_byzantine_minority_cannot_drag),
        cmocka_unit_test(test_jump_restores_the_quorum),
        cmocka_unit_test(test_lost_round_is_not_waited_for),
        cmocka_unit_test(test_nonfinite_model_is_not_waited_for),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
