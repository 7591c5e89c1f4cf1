/*  cmocka.h -- the few cmocka calls tests/test_layers.c and tests/test_model.c
 *  use, for the aarch64 cross build only (tests/cross_aarch64.sh).
 *
 *  Debian's cross toolchain has no arm64 cmocka (that would need a multiarch
 *  arm64 package set), so the kernel tests are cross-built against this
 *  header instead: same test sources, same checks, same summary lines
 *  ("[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)") that scripts/test.sh
 *  counts.  A failed assertion ends the test case through longjmp, as in
 *  cmocka.  Never used by the native build, which links the real cmocka.
 */
#ifndef BN_CROSS_CMOCKA_H
#define BN_CROSS_CMOCKA_H

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct CMUnitTest {
    const char *name;
    void (*test_func)(void **state);
    int (*setup_func)(void **state);
    int (*teardown_func)(void **state);
    void *initial_state;
};

#define cmocka_unit_test(f)            { #f, f, NULL, NULL, NULL }
#define cmocka_unit_test_setup(f, s)   { #f, f, s, NULL, NULL }

static jmp_buf bn_mc_jump;

__attribute__((unused, noreturn, format(printf, 3, 4)))
static void bn_mc_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[  ERROR   ] --- ");
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    longjmp(bn_mc_jump, 1);
}

#define fail_msg(...) bn_mc_fail(__FILE__, __LINE__, __VA_ARGS__)
#define assert_true(c) \
    do { if (!(c)) bn_mc_fail(__FILE__, __LINE__, "%s", #c); } while (0)
#define assert_non_null(p) \
    do { if ((p) == NULL) bn_mc_fail(__FILE__, __LINE__, "%s is NULL", #p); } while (0)
#define assert_null(p) \
    do { if ((p) != NULL) bn_mc_fail(__FILE__, __LINE__, "%s is not NULL", #p); } while (0)
#define assert_int_equal(a, b) \
    do { long long bn_a_ = (long long) (a), bn_b_ = (long long) (b); \
         if (bn_a_ != bn_b_) bn_mc_fail(__FILE__, __LINE__, "%#llx != %#llx", bn_a_, bn_b_); } while (0)
/* As cmocka: equal within epsilon, or within FLT_EPSILON relative. */
#define assert_float_equal(a, b, eps) \
    do { double bn_a_ = (a), bn_b_ = (b), bn_d_ = fabs(bn_a_ - bn_b_); \
         double bn_l_ = fabs(bn_a_) > fabs(bn_b_) ? fabs(bn_a_) : fabs(bn_b_); \
         if (!(bn_d_ <= (eps)) && !(bn_d_ <= bn_l_ * FLT_EPSILON)) \
             bn_mc_fail(__FILE__, __LINE__, "%f != %f", bn_a_, bn_b_); } while (0)
#define assert_memory_equal(a, b, n) \
    do { if (memcmp((a), (b), (n)) != 0) \
             bn_mc_fail(__FILE__, __LINE__, "%s and %s differ", #a, #b); } while (0)
#define assert_string_equal(a, b) \
    do { if (strcmp((a), (b)) != 0) \
             bn_mc_fail(__FILE__, __LINE__, "\"%s\" != \"%s\"", (a), (b)); } while (0)

/* One test case: 1 passed, 0 failed (an assertion jumped back here). */
__attribute__((unused))
static int bn_mc_run_one(const struct CMUnitTest *t)
{
    void *state = t->initial_state;
    if (setjmp(bn_mc_jump) != 0)
        return 0;
    if (t->setup_func && t->setup_func(&state) != 0)
        bn_mc_fail(__FILE__, __LINE__, "setup failed");
    t->test_func(&state);
    if (t->teardown_func)
        t->teardown_func(&state);
    return 1;
}

__attribute__((unused))
static int bn_mc_run(const char *group, const struct CMUnitTest *tests, size_t n)
{
    size_t failed = 0;
    printf("[==========] %s: Running %zu test(s).\n", group, n);
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", tests[i].name);
        fflush(stdout);
        if (bn_mc_run_one(&tests[i])) {
            printf("[       OK ] %s\n", tests[i].name);
        } else {
            printf("[  FAILED  ] %s\n", tests[i].name);
            failed++;
        }
        fflush(stdout);
    }
    printf("[==========] %s: %zu test(s) run.\n", group, n);
    printf("[  PASSED  ] %zu test(s).\n", n - failed);
    if (failed)
        printf("[  FAILED  ] %zu test(s)\n", failed);
    fflush(stdout);
    return (int) failed;
}

#define cmocka_run_group_tests_name(group, tests, setup, teardown) \
    ((void) (setup), (void) (teardown), \
     bn_mc_run((group), (tests), sizeof(tests) / sizeof((tests)[0])))
#define cmocka_run_group_tests(tests, setup, teardown) \
    cmocka_run_group_tests_name(#tests, tests, setup, teardown)
/* cmocka's own entry point with an explicit count (tests/fixture.c's
 * bn_fx_run_per_kernel_set); the group setup and teardown must be NULL. */
#define _cmocka_run_group_tests(group, tests, count, setup, teardown) \
    ((void) (setup), (void) (teardown), bn_mc_run((group), (tests), (count)))

#endif
