/*  test_metrics.c -- consensus error (eq. 3) by hand, report round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "json.h"

static void test_consensus_error_by_hand(void **state)
{
    (void) state;
    /* x1 = (1, 0), x2 = (3, 0): xbar = (2, 0), ||xbar||^2 = 4,
     * sum ||xi - xbar||^2 = 1 + 1 = 2, err = (1/2) * 2 / 4 = 0.25. */
    float a[2] = { 1, 0 }, b[2] = { 3, 0 };
    const float *x[2] = { a, b };
    double scratch[2];
    assert_float_equal(bn_consensus_error(x, 2, 2, scratch), 0.25, 1e-12);
    /* Identical models: zero. */
    const float *same[2] = { a, a };
    assert_float_equal(bn_consensus_error(same, 2, 2, scratch), 0.0, 0.0);
    /* One model: zero by definition; none: undefined. */
    assert_float_equal(bn_consensus_error(x, 1, 2, scratch), 0.0, 0.0);
    assert_true(isnan(bn_consensus_error(x, 0, 2, scratch)));
    /* Three models, 3-d: x = (1,2,2), (1,2,2), (4,2,2): xbar = (2,2,2), ||xbar||^2 = 12,
     * deviations 1 + 1 + 4 = 6, err = 6 / 3 / 12 = 1/6. */
    float c[3] = { 1, 2, 2 }, d[3] = { 4, 2, 2 };
    const float *y[3] = { c, c, d };
    double s3[3];
    assert_float_equal(bn_consensus_error(y, 3, 3, s3), 1.0 / 6.0, 1e-9);
    /* xbar = 0 with differing models: infinite. */
    float e[1] = { 1 }, f[1] = { -1 };
    const float *z[2] = { e, f };
    assert_true(isinf(bn_consensus_error(z, 2, 1, scratch)));
}

static void test_report_round_trip(void **state)
{
    (void) state;
    bn_report_t r;
    memset(&r, 0, sizeof r);
    float w[4] = { 0.25f, 0.0f, 0.5f, 0.25f };
    r.node = 3;
    r.epoch = 7;
    r.n_nodes = 4;
    r.honest = true;
    r.final = true;
    strcpy(r.attack, "none");
    r.accuracy = 0.8765;
    r.test_loss = 0.4;
    r.train_loss = NAN;
    r.bytes_sent = 123456789012ULL;
    r.drops[BN_DROP_STALE] = 5;
    r.drops[BN_DROP_NONFINITE] = 2;
    r.t_wait = 1.5;
    r.topology_fp = 0xfedcba9876543210ULL;
    r.config_fp = 0x8000000000000001ULL;
    r.rounds_skipped = 11;
    r.peers_given_up = 12;
    r.peers_restored = 13;
    r.rule_nonfinite = 14;
    r.weight = w;
    msgpack_sbuffer sb;
    bn_report_encode(&r, &sb);
    bn_report_t back;
    assert_int_equal(bn_report_unpack(sb.data, sb.size, &back), BN_OK);
    assert_int_equal(back.node, 3);
    assert_int_equal(back.epoch, 7);
    assert_true(back.honest && back.final && !back.resumed);
    assert_string_equal(back.attack, "none");
    assert_float_equal(back.accuracy, 0.8765, 1e-12);
    assert_true(isnan(back.train_loss));
    assert_int_equal(back.bytes_sent, 123456789012ULL);
    assert_int_equal(back.drops[BN_DROP_STALE], 5);
    assert_int_equal(back.drops[BN_DROP_NONFINITE], 2);
    assert_int_equal(back.topology_fp, 0xfedcba9876543210ULL);
    assert_int_equal(back.config_fp, 0x8000000000000001ULL);
    assert_int_equal(back.rounds_skipped, 11);
    assert_int_equal(back.peers_given_up, 12);
    assert_int_equal(back.peers_restored, 13);
    assert_int_equal(back.rule_nonfinite, 14);
    assert_int_equal(back.n_nodes, 4);
    assert_non_null(back.weight);
    for (int i = 0; i < 4; i++)
        assert_float_equal(back.weight[i], w[i], 0);
    free(back.weight);

    /* Every truncation of the buffer is rejected without reading past it. */
    for (size_t cut = 0; cut < sb.size; cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, sb.data, cut);
        bn_report_t t;
        assert_int_equal(bn_report_unpack(copy, cut, &t), BN_EFORMAT);
        free(copy);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---- one key at a time ------------------------------------------------
 *
 * s_valid() packs a complete report; s_mutated() re-packs it with key `key`
 * replaced by what `put` packs (put NULL: the key left out), optionally
 * followed by a second copy of the key (dup) or a trailing byte (tail). */

typedef void (*s_put_fn)(msgpack_packer *pk);

static void s_valid(msgpack_sbuffer *sb, float *w)
{
    bn_report_t r;
    memset(&r, 0, sizeof r);
    r.node = 1;
    r.epoch = 2;
    r.n_nodes = 3;
    r.honest = true;
    strcpy(r.attack, "none");
    r.accuracy = 0.5;
    r.test_loss = 1.0;
    r.train_loss = 1.1;
    r.rounds = 10;
    r.t_epoch = 2.0;
    r.config_fp = 0x0123456789abcdefULL;
    r.rounds_skipped = 4;
    r.peers_given_up = 5;
    r.peers_restored = 6;
    w[0] = 0.25f, w[1] = 0.5f, w[2] = 0.25f;
    r.weight = w;
    bn_report_encode(&r, sb);
}

/* s_valid's report, packed into sb and unpacked into up (the caller
 * destroys both). */
static void s_valid_map(msgpack_sbuffer *sb, msgpack_unpacked *up, float *w)
{
    s_valid(sb, w);
    msgpack_unpacked_init(up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(up, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
}

static void s_mutated(msgpack_sbuffer *out, const char *key, s_put_fn put, bool dup, bool tail)
{
    float w[3];
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    s_valid_map(&sb, &up, w);
    const msgpack_object *o = &up.data;
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    bool found = false;
    for (uint32_t i = 0; i < o->via.map.size; i++)
        found |= o->via.map.ptr[i].key.via.str.size == strlen(key)
                 && !memcmp(o->via.map.ptr[i].key.via.str.ptr, key, strlen(key));
    uint32_t size = o->via.map.size - (found && !put ? 1 : 0) + (dup ? 1 : 0) + (!found && put);
    msgpack_pack_map(&pk, size);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        bool hit = k->via.str.size == strlen(key) && !memcmp(k->via.str.ptr, key, strlen(key));
        if (hit && !put)
            continue;
        msgpack_pack_object(&pk, *k);
        if (hit)
            put(&pk);
        else
            msgpack_pack_object(&pk, o->via.map.ptr[i].val);
        if (hit && dup) {
            msgpack_pack_object(&pk, *k);
            put(&pk);
        }
    }
    if (!found && put) {
        msgpack_pack_str(&pk, strlen(key));
        msgpack_pack_str_body(&pk, key, strlen(key));
        put(&pk);
    }
    if (tail)
        msgpack_pack_nil(&pk);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static int s_unpack_mutated(const char *key, s_put_fn put, bool dup, bool tail)
{
    msgpack_sbuffer sb;
    s_mutated(&sb, key, put, dup, tail);
    bn_report_t r;
    int rc = bn_report_unpack(sb.data, sb.size, &r);
    if (rc == BN_OK)
        free(r.weight);
    else
        for (size_t i = 0; i < sizeof r; i++)
            assert_int_equal(((unsigned char *) &r)[i], 0);   /* zeroed on failure */
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void s_put_u8(msgpack_packer *pk) { msgpack_pack_uint8(pk, 1); }
static void s_put_neg(msgpack_packer *pk) { msgpack_pack_int8(pk, -1); }
static void s_put_big(msgpack_packer *pk) { msgpack_pack_uint64(pk, 1ULL << 32); }
static void s_put_nan(msgpack_packer *pk) { msgpack_pack_double(pk, NAN); }
static void s_put_inf(msgpack_packer *pk) { msgpack_pack_double(pk, INFINITY); }
static void s_put_half(msgpack_packer *pk) { msgpack_pack_double(pk, 0.5); }
static void s_put_str(msgpack_packer *pk) { msgpack_pack_str(pk, 1); msgpack_pack_str_body(pk, "x", 1); }
static void s_put_true(msgpack_packer *pk) { msgpack_pack_true(pk); }
static void s_put_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void s_put_quote(msgpack_packer *pk) { msgpack_pack_str(pk, 5); msgpack_pack_str_body(pk, "a\",\"b", 5); }
static void s_put_long_drops(msgpack_packer *pk)
{
    msgpack_pack_array(pk, BN_DROP_COUNT + 1);
    for (int i = 0; i <= BN_DROP_COUNT; i++)
        msgpack_pack_uint8(pk, 0);
}
static void s_put_short_drops(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_uint8(pk, 7);
}
static void s_put_w2(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_float(pk, 0.5f);
    msgpack_pack_float(pk, 0.5f);
}
static void s_put_w_nan(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_float(pk, 0.5f);
    msgpack_pack_float(pk, NAN);
    msgpack_pack_float(pk, 0.5f);
}
static void s_put_w_huge(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_double(pk, 1e300);   /* finite double, infinite as float32 */
    msgpack_pack_float(pk, 0.5f);
    msgpack_pack_float(pk, 0.5f);
}
static void s_put_many_nodes(msgpack_packer *pk) { msgpack_pack_uint32(pk, BN_REPORT_MAX_NODES + 1); }

static void test_report_every_key_required(void **state)
{
    (void) state;
    const char *keys[] = { "node", "epoch", "n_nodes", "honest", "final", "resumed", "attack",
                           "accuracy", "test_loss", "train_loss", "eval_images", "bytes_sent",
                           "bytes_received", "msgs_sent", "msgs_received", "send_dropped",
                           "rounds", "rounds_timed_out", "missing", "rounds_skipped",
                           "peers_given_up", "peers_restored", "max_rss_kb", "fault_dropped",
                           "fault_delayed", "shm_sent", "shm_received", "rule_nonfinite", "dropped", "t_compute", "t_wait",
                           "t_aggregate", "t_encode", "t_eval", "t_epoch", "cpu_compute",
                           "cpu_aggregate", "cpu_encode", "cpu_eval", "cpu_process",
                           "ctx_voluntary", "ctx_involuntary", "topology",
                           "config", "degree", "weight" };
    assert_int_equal(s_unpack_mutated("no-such-key", NULL, false, false), BN_OK);
    for (size_t i = 0; i < BN_ARRAY_LEN(keys); i++) {
        /* the test's list is the table: each key is known (present in the
         * packed map, so removing it is noticed) and required */
        assert_int_equal(s_unpack_mutated(keys[i], NULL, false, false), BN_EFORMAT);
    }
    /* and the packer writes exactly these keys */
    float w[3];
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    s_valid_map(&sb, &up, w);
    assert_int_equal(up.data.via.map.size, BN_ARRAY_LEN(keys));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_report_rejects_bad_values(void **state)
{
    (void) state;
    /* wrong types */
    assert_int_equal(s_unpack_mutated("honest", s_put_u8, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("node", s_put_str, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("node", s_put_half, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("node", s_put_true, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("t_epoch", s_put_str, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("dropped", s_put_u8, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("weight", s_put_u8, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("attack", s_put_u8, false, false), BN_EFORMAT);
    /* ranges */
    assert_int_equal(s_unpack_mutated("epoch", s_put_neg, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("epoch", s_put_big, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("bytes_sent", s_put_big, false, false), BN_OK);
    assert_int_equal(s_unpack_mutated("n_nodes", s_put_many_nodes, false, false), BN_EFORMAT);
    /* finiteness: t_* must be finite; accuracy and the losses may be NaN, never infinite */
    assert_int_equal(s_unpack_mutated("t_epoch", s_put_nan, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("t_wait", s_put_inf, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("accuracy", s_put_nan, false, false), BN_OK);
    assert_int_equal(s_unpack_mutated("accuracy", s_put_inf, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("train_loss", s_put_nan, false, false), BN_OK);
    assert_int_equal(s_unpack_mutated("test_loss", s_put_inf, false, false), BN_EFORMAT);
    /* duplicates, trailing bytes */
    assert_int_equal(s_unpack_mutated("epoch", s_put_u8, true, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("node", s_put_u8, false, true), BN_EFORMAT);
    /* arrays */
    assert_int_equal(s_unpack_mutated("dropped", s_put_long_drops, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("dropped", s_put_short_drops, false, false), BN_OK);
    assert_int_equal(s_unpack_mutated("weight", s_put_w2, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("weight", s_put_w_nan, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("weight", s_put_w_huge, false, false), BN_EFORMAT);
    assert_int_equal(s_unpack_mutated("weight", s_put_nil, false, false), BN_OK);
    /* an attack name that would break JSON */
    assert_int_equal(s_unpack_mutated("attack", s_put_quote, false, false), BN_EFORMAT);
    /* not a map */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    bn_report_t t;
    assert_int_equal(bn_report_unpack(sb.data, sb.size, &t), BN_EFORMAT);
    assert_int_equal(bn_report_unpack(NULL, 0, &t), BN_EFORMAT);
    msgpack_sbuffer_destroy(&sb);
}

/* The JSON line has the wire's keys, null for NaN, hex fingerprints, the
 * 1-based epoch, the drop counters by name. */
static void test_report_json_keys(void **state)
{
    (void) state;
    float w[3];
    msgpack_sbuffer sb;
    s_valid(&sb, w);
    bn_report_t r;
    assert_int_equal(bn_report_unpack(sb.data, sb.size, &r), BN_OK);
    r.accuracy = NAN;
    r.drops[BN_DROP_STALE] = 3;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    bn_report_to_json(&r, f);
    fclose(f);
    assert_non_null(strstr(buf, "\"epoch\": 3,"));
    assert_non_null(strstr(buf, "\"accuracy\": null"));
    assert_non_null(strstr(buf, "\"config\": \"0123456789abcdef\""));
    assert_non_null(strstr(buf, "\"dropped\": {\"stale\": 3}"));
    assert_non_null(strstr(buf, "\"weight\": [0.25, 0.5, 0.25]"));
    assert_non_null(strstr(buf, "\"rounds_skipped\": 4, \"peers_given_up\": 5, \"peers_restored\": 6"));
    assert_non_null(strstr(buf, "\"n_nodes\": 3"));
    assert_non_null(strstr(buf, "\"honest\": true"));
    assert_non_null(strstr(buf, "\"rule_nonfinite\": 0"));
    free(buf);
    free(r.weight);
    msgpack_sbuffer_destroy(&sb);
}

/* Found by fuzz_report: 5 bytes declaring a 2^32-element array made
 * msgpack-c ask for 64 GB.  Containers must fit the bytes left. */
static void test_msgpack_span_bounds_containers(void **state)
{
    (void) state;
    const uint8_t huge_array[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    const uint8_t huge_map[] = { 0x81, 0xa1, 'w', 0xdf, 0x10, 0x00, 0x00, 0x00, 0xc0 };
    const uint8_t ok_map[] = { 0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc3, 0xcb,
                               0, 0, 0, 0, 0, 0, 0, 0 };
    const uint8_t long_str[] = { 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x' };
    bn_report_t r;
    assert_int_equal(bn_msgpack_span(huge_array, sizeof huge_array), 0);
    assert_int_equal(bn_report_unpack(huge_array, sizeof huge_array, &r), BN_EFORMAT);
    assert_int_equal(bn_msgpack_span(huge_map, sizeof huge_map), 0);
    assert_int_equal(bn_report_unpack(huge_map, sizeof huge_map, &r), BN_EFORMAT);
    assert_int_equal(bn_msgpack_span(ok_map, sizeof ok_map), sizeof ok_map);
    assert_int_equal(bn_msgpack_span(ok_map, sizeof ok_map - 1), 0);       /* cut */
    assert_int_equal(bn_msgpack_span(long_str, sizeof long_str), 0);
    const uint8_t two[] = { 0x01, 0x02 };
    assert_int_equal(bn_msgpack_span(two, 2), 1);     /* the first object only */
    const uint8_t never[] = { 0xc1 };
    assert_int_equal(bn_msgpack_span(never, 1), 0);
    /* a valid report spans its whole frame */
    float w[3];
    msgpack_sbuffer sb;
    s_valid(&sb, w);
    assert_int_equal(bn_msgpack_span(sb.data, sb.size), sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void test_json_string_escapes(void **state)
{
    (void) state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    bn_json_string(f, "a\"b\\c\n");
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\u000a\"");
    free(buf);
    /* invalid UTF-8 (a lone continuation byte, an overlong '/', a surrogate,
     * a truncated sequence) becomes U+FFFD; valid multi-byte text is kept */
    buf = NULL;
    f = open_memstream(&buf, &len);
    bn_json_string(f, "\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\xc3\xa9");
    bn_json_number(f, NAN, 6);
    bn_json_number(f, -INFINITY, 6);
    bn_json_number(f, 0.25, 6);
    fclose(f);
    assert_string_equal(buf, "\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\xc3\xa9\"nullnull0.25");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consensus_error_by_hand),
        cmocka_unit_test(test_report_round_trip),
        cmocka_unit_test(test_report_every_key_required),
        cmocka_unit_test(test_report_rejects_bad_values),
        cmocka_unit_test(test_report_json_keys),
        cmocka_unit_test(test_msgpack_span_bounds_containers),
        cmocka_unit_test(test_json_string_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
