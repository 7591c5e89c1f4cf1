/*  test_rng.c -- determinism and basic distribution checks of rng.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "rng.h"

static void test_same_seed_same_stream(void **state)
{
    (void) state;
    bn_rng_t a, b, c;
    bn_rng_seed(&a, 42, BN_STREAM_INIT);
    bn_rng_seed(&b, 42, BN_STREAM_INIT);
    bn_rng_seed(&c, 42, BN_STREAM_PARTITION);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = bn_rng_next(&a), y = bn_rng_next(&b), z = bn_rng_next(&c);
        assert_int_equal(x, y);
        differ += x != z;
    }
    assert_true(differ > 990);
}

static void test_known_values(void **state)
{
    (void) state;
    /* The xoshiro256** core against its published sequence for state {1,2,3,4}. */
    bn_rng_t core = { { 1, 2, 3, 4 } };
    const uint64_t ref[4] = { 11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL };
    for (int i = 0; i < 4; i++)
        assert_int_equal(bn_rng_next(&core), ref[i]);
    /* Our seeding, pinned bit for bit: changing it changes every run's
     * topology, partition and initial model, so it must be deliberate. */
    bn_rng_t r;
    bn_rng_seed(&r, 1, 1);
    assert_int_equal(bn_rng_next(&r), 0x3ef46f39df78a29dULL);
    assert_int_equal(bn_rng_next(&r), 0x1fc552724167f79aULL);
}

static void test_uniform_and_normal_moments(void **state)
{
    (void) state;
    bn_rng_t r;
    bn_rng_seed(&r, 7, 99);
    double su = 0, sn = 0, sn2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = bn_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        double g = bn_rng_normal(&r);
        sn += g;
        sn2 += g * g;
    }
    assert_true(fabs(su / n - 0.5) < 0.005);
    assert_true(fabs(sn / n) < 0.01);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
}

static void test_gamma_mean(void **state)
{
    (void) state;
    bn_rng_t r;
    bn_rng_seed(&r, 3, 5);
    const double alphas[] = { 0.3, 1.0, 4.5 };
    for (size_t a = 0; a < 3; a++) {
        double s = 0;
        for (int i = 0; i < 100000; i++)
            s += bn_rng_gamma(&r, alphas[a]);
        assert_true(fabs(s / 100000 - alphas[a]) < 0.05 * alphas[a] + 0.01);
    }
}

static void test_below_and_shuffle(void **state)
{
    (void) state;
    bn_rng_t r;
    bn_rng_seed(&r, 11, 2);
    int counts[7] = { 0 };
    for (int i = 0; i < 70000; i++)
        counts[bn_rng_below(&r, 7)]++;
    for (int i = 0; i < 7; i++)
        assert_true(counts[i] > 9500 && counts[i] < 10500);
    uint32_t a[100];
    for (uint32_t i = 0; i < 100; i++)
        a[i] = i;
    bn_rng_shuffle_u32(&r, a, 100);
    int seen[100] = { 0 }, moved = 0;
    for (uint32_t i = 0; i < 100; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_stream),
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_uniform_and_normal_moments),
        cmocka_unit_test(test_gamma_mean),
        cmocka_unit_test(test_below_and_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
