/*  test_sgd.c -- SGD steps against hand-computed PyTorch-semantics values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>

#include "sgd.h"

static void test_plain_with_weight_decay(void **state)
{
    (void) state;
    bn_sgd_t s;
    assert_int_equal(bn_sgd_init(&s, 2, 0.1f, 0.01f, 0.0f), BN_OK);
    assert_null(s.velocity);
    float x[2] = { 1.0f, -2.0f };
    const float g[2] = { 0.5f, 0.25f };
    /* x -= 0.1 * (g + 0.01 x): (0.949, -2.023), then (0.898051, -2.045977). */
    bn_sgd_step(&s, x, g);
    assert_float_equal(x[0], 0.949f, 1e-6);
    assert_float_equal(x[1], -2.023f, 1e-6);
    bn_sgd_step(&s, x, g);
    assert_float_equal(x[0], 0.898051f, 1e-6);
    assert_float_equal(x[1], -2.045977f, 1e-6);
    bn_sgd_free(&s);
    bn_sgd_free(&s);
}

static void test_momentum(void **state)
{
    (void) state;
    bn_sgd_t s;
    assert_int_equal(bn_sgd_init(&s, 2, 0.1f, 0.01f, 0.9f), BN_OK);
    assert_non_null(s.velocity);
    float x[2] = { 1.0f, -2.0f };
    const float g[2] = { 0.5f, 0.25f };
    /* Step 1: v = g + wd x = (0.51, 0.23) (no momentum term on the first
     * step); x = (0.949, -2.023). */
    bn_sgd_step(&s, x, g);
    assert_float_equal(s.velocity[0], 0.51f, 1e-6);
    assert_float_equal(s.velocity[1], 0.23f, 1e-6);
    assert_float_equal(x[0], 0.949f, 1e-6);
    assert_float_equal(x[1], -2.023f, 1e-6);
    /* Step 2: v = 0.9 (0.51, 0.23) + (0.50949, 0.22977) = (0.96849, 0.43677);
     * x = (0.852151, -2.066677). */
    bn_sgd_step(&s, x, g);
    assert_float_equal(s.velocity[0], 0.96849f, 1e-6);
    assert_float_equal(s.velocity[1], 0.43677f, 1e-6);
    assert_float_equal(x[0], 0.852151f, 1e-6);
    assert_float_equal(x[1], -2.066677f, 1e-6);
    bn_sgd_free(&s);
    assert_null(s.velocity);
}

static void test_momentum_without_decay(void **state)
{
    (void) state;
    bn_sgd_t s;
    assert_int_equal(bn_sgd_init(&s, 1, 0.5f, 0.0f, 0.5f), BN_OK);
    float x = 0.0f;
    const float g = 1.0f;
    /* v: 1, 1.5, 1.75; x: -0.5, -1.25, -2.125. */
    bn_sgd_step(&s, &x, &g);
    assert_float_equal(x, -0.5f, 1e-7);
    bn_sgd_step(&s, &x, &g);
    assert_float_equal(x, -1.25f, 1e-7);
    bn_sgd_step(&s, &x, &g);
    assert_float_equal(x, -2.125f, 1e-7);
    bn_sgd_free(&s);
}

static void test_bad_arguments(void **state)
{
    (void) state;
    bn_sgd_t s;
    assert_int_equal(bn_sgd_init(&s, 0, 0.1f, 0.0f, 0.0f), BN_EARG);
    assert_int_equal(bn_sgd_init(&s, 4, -0.1f, 0.0f, 0.0f), BN_EARG);
    assert_int_equal(bn_sgd_init(&s, 4, NAN, 0.0f, 0.0f), BN_EARG);
    assert_int_equal(bn_sgd_init(&s, 4, 0.1f, -1.0f, 0.0f), BN_EARG);
    assert_int_equal(bn_sgd_init(&s, 4, 0.1f, 0.0f, 1.0f), BN_EARG);
    assert_int_equal(bn_sgd_init(NULL, 4, 0.1f, 0.0f, 0.0f), BN_EARG);
    bn_sgd_free(&s);
    bn_sgd_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_with_weight_decay),
        cmocka_unit_test(test_momentum),
        cmocka_unit_test(test_momentum_without_decay),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
