/*  test_fault.c -- the seeded fault decisions and the delay FIFO: the drop
 *  rate, repeatability from the seed, no effect at 0, due order, a full
 *  queue passing sends through, and held items released at destroy. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>

#include "fault.h"

static void test_off_passes_everything(void **state)
{
    (void) state;
    bn_fault_t *f = bn_fault_new(0, 0, 1, 0, NULL);
    assert_non_null(f);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bn_fault_decide(f), BN_FAULT_PASS);
    assert_int_equal(bn_fault_stats(f)->dropped, 0);
    assert_int_equal(bn_fault_next_due_ms(f, 0), -1);
    assert_null(bn_fault_pop_due(f, 1e9));
    bn_fault_destroy(&f);
    assert_null(f);
    bn_fault_destroy(&f);       /* safe twice */
}

static void test_drop_rate_and_repeatability(void **state)
{
    (void) state;
    bn_fault_t *a = bn_fault_new(0.25, 0, 7, 3, NULL), *b = bn_fault_new(0.25, 0, 7, 3, NULL);
    bn_fault_t *c = bn_fault_new(0.25, 0, 7, 4, NULL);      /* another node: other draws */
    int drops = 0, differ = 0;
    for (int i = 0; i < 20000; i++) {
        bn_fault_verdict_t va = bn_fault_decide(a);
        assert_int_equal(va, bn_fault_decide(b));
        differ += va != bn_fault_decide(c);
        drops += va == BN_FAULT_DROP;
        assert_true(va == BN_FAULT_DROP || va == BN_FAULT_PASS);
    }
    assert_true(drops > 4500 && drops < 5500);              /* 25 % of 20,000 */
    assert_int_equal(bn_fault_stats(a)->dropped, (uint64_t) drops);
    assert_true(differ > 1000);
    bn_fault_destroy(&a);
    bn_fault_destroy(&b);
    bn_fault_destroy(&c);
}

static void test_delay_fifo(void **state)
{
    (void) state;
    bn_fault_t *f = bn_fault_new(0, 50, 1, 0, NULL);
    int items[3] = { 1, 2, 3 };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bn_fault_decide(f), BN_FAULT_HOLD);
        bn_fault_hold(f, 10.0 + i * 0.01, &items[i]);
    }
    assert_int_equal(bn_fault_held(f), 3);
    assert_int_equal(bn_fault_stats(f)->delayed, 3);
    assert_null(bn_fault_pop_due(f, 10.049));               /* due at 10.05 */
    assert_int_equal(bn_fault_next_due_ms(f, 10.04), 11);   /* 10 ms, rounded up + 1 */
    assert_int_equal(bn_fault_next_due_ms(f, 10.06), 0);
    assert_ptr_equal(bn_fault_pop_due(f, 10.05), &items[0]);
    assert_null(bn_fault_pop_due(f, 10.05));
    assert_ptr_equal(bn_fault_pop_due(f, 11.0), &items[1]);
    assert_ptr_equal(bn_fault_pop_due(f, 11.0), &items[2]);
    assert_int_equal(bn_fault_held(f), 0);
    bn_fault_destroy(&f);
}

static void test_full_queue_passes(void **state)
{
    (void) state;
    bn_fault_t *f = bn_fault_new(0, 1000, 1, 0, NULL);
    static int item;
    for (int i = 0; i < BN_FAULT_QUEUE; i++) {
        assert_int_equal(bn_fault_decide(f), BN_FAULT_HOLD);
        bn_fault_hold(f, 0, &item);
    }
    assert_int_equal(bn_fault_decide(f), BN_FAULT_PASS);    /* sent at once, not lost */
    bn_fault_destroy(&f);
}

static int s_freed;
static void s_free_item(void *item)
{
    free(item);
    s_freed++;
}

static void test_destroy_releases_held(void **state)
{
    (void) state;
    bn_fault_t *f = bn_fault_new(0, 60000, 1, 0, s_free_item);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(bn_fault_decide(f), BN_FAULT_HOLD);
        bn_fault_hold(f, 0, malloc(16));
    }
    free(bn_fault_pop_due(f, 1e9));                         /* popped: ours now */
    s_freed = 0;
    bn_fault_destroy(&f);
    assert_int_equal(s_freed, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_passes_everything),
        cmocka_unit_test(test_drop_rate_and_repeatability),
        cmocka_unit_test(test_delay_fifo),
        cmocka_unit_test(test_full_queue_passes),
        cmocka_unit_test(test_destroy_releases_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
