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
    /* One model: zero by definition. */
    assert_float_equal(bn_consensus_error(x, 1, 2, scratch), 0.0, 0.0);
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
    r.weight = w;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bn_report_pack(&r, &pk);
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

static void test_report_rejects_wrong_types(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "honest", 6);
    msgpack_pack_uint8(&pk, 1);  /* must be a boolean */
    bn_report_t t;
    assert_int_equal(bn_report_unpack(sb.data, sb.size, &t), BN_EFORMAT);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2);  /* not a map */
    msgpack_pack_nil(&pk);
    msgpack_pack_nil(&pk);
    assert_int_equal(bn_report_unpack(sb.data, sb.size, &t), BN_EFORMAT);
    /* An attack name that would break the monitor's JSON is refused. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "attack", 6);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "a\",\"b", 5);
    assert_int_equal(bn_report_unpack(sb.data, sb.size, &t), BN_EFORMAT);
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consensus_error_by_hand),
        cmocka_unit_test(test_report_round_trip),
        cmocka_unit_test(test_report_rejects_wrong_types),
        cmocka_unit_test(test_json_string_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
