/*  test_partition.c -- iid / shards / dirichlet partitions: disjoint, complete,
 *  balanced (iid), label-skewed (shards, small alpha), deterministic within a
 *  process and across processes (fork + pipe), and argument checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "partition.h"
#include "rng.h"
#include "fixture.h"

#define N 10000

static uint8_t s_labels[N];

/* Labels with exactly N/10 of each class, in a scrambled (but fixed) order. */
static int s_setup(void **state)
{
    (void) state;
    for (uint32_t i = 0; i < N; i++)
        s_labels[i] = (uint8_t) ((i * 7919u) % 10u);
    return 0;
}

/* Runs every node; checks sorted, disjoint, complete; fills per-node counts
 * and per-node class histograms; returns a hash of the whole assignment. */
static uint64_t s_run_all(const bn_partition_opts_t *o, uint32_t n, uint32_t *sizes,
                          uint32_t (*hist)[BN_NUM_CLASSES])
{
    uint8_t *owner_seen = calloc(n, 1);
    assert_non_null(owner_seen);
    uint64_t h = 0x1234;
    char err[256];
    for (uint32_t node = 0; node < o->nodes; node++) {
        uint32_t *idx = NULL, count = 0;
        int rc = bn_partition_node(o, s_labels, n, node, &idx, &count, err, sizeof err);
        if (rc != BN_OK)
            fail_msg("%s", err);
        assert_non_null(idx);
        if (sizes)
            sizes[node] = count;
        if (hist)
            memset(hist[node], 0, sizeof hist[node]);
        for (uint32_t k = 0; k < count; k++) {
            assert_true(idx[k] < n);
            if (k > 0)
                assert_true(idx[k - 1] < idx[k]);          /* sorted, no repeats */
            assert_int_equal(owner_seen[idx[k]], 0);       /* disjoint */
            owner_seen[idx[k]] = 1;
            if (hist)
                hist[node][s_labels[idx[k]]]++;
            h = bn_mix64(h ^ ((uint64_t) node << 32 | idx[k]));
        }
        free(idx);
    }
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(owner_seen[i], 1);                /* complete */
    free(owner_seen);
    return h;
}

static void test_parse_and_name(void **state)
{
    (void) state;
    bn_partition_kind_t k;
    assert_int_equal(bn_partition_parse("iid", &k), BN_OK);
    assert_int_equal(k, BN_PART_IID);
    assert_int_equal(bn_partition_parse("shards", &k), BN_OK);
    assert_int_equal(k, BN_PART_SHARDS);
    assert_int_equal(bn_partition_parse("dirichlet", &k), BN_OK);
    assert_int_equal(k, BN_PART_DIRICHLET);
    assert_int_equal(bn_partition_parse("IID", &k), BN_EARG);
    assert_int_equal(bn_partition_parse("", &k), BN_EARG);
    assert_int_equal(bn_partition_parse(NULL, &k), BN_EARG);
    assert_string_equal(bn_partition_name(BN_PART_SHARDS), "shards");
    assert_string_equal(bn_partition_name(BN_PART_DIRICHLET), "dirichlet");
    assert_string_equal(bn_partition_name((bn_partition_kind_t) 42), "unknown");
}

static void test_iid_balanced(void **state)
{
    (void) state;
    bn_partition_opts_t o = { .kind = BN_PART_IID, .seed = 3, .nodes = 7 };
    uint32_t sizes[7], hist[7][BN_NUM_CLASSES];
    s_run_all(&o, N, sizes, hist);
    /* 10000 = 7 * 1428 + 4: nodes 0..3 get 1429, nodes 4..6 get 1428. */
    for (int i = 0; i < 7; i++)
        assert_int_equal(sizes[i], i < 4 ? 1429 : 1428);
    /* Every class present at about 1/10 (142.9 expected, sd ~11). */
    for (int i = 0; i < 7; i++)
        for (int c = 0; c < BN_NUM_CLASSES; c++)
            assert_true(hist[i][c] > 90 && hist[i][c] < 200);
    /* One node: everything.  n not divisible, nodes > n: sizes 1 or 0. */
    o.nodes = 1;
    s_run_all(&o, N, sizes, NULL);
    assert_int_equal(sizes[0], N);
    o.nodes = 7;
    s_run_all(&o, 5, sizes, NULL);
    uint32_t expect[7] = { 1, 1, 1, 1, 1, 0, 0 };
    assert_memory_equal(sizes, expect, sizeof expect);
}

static void test_shards_label_skew(void **state)
{
    (void) state;
    /* 20 nodes x 2 shards = 40 shards of 250 images; each class (1000
     * images) is exactly 4 shards, so each node sees at most 2 classes. */
    bn_partition_opts_t o = { .kind = BN_PART_SHARDS, .seed = 11, .nodes = 20, .shards_per_node = 2 };
    uint32_t sizes[20], hist[20][BN_NUM_CLASSES];
    s_run_all(&o, N, sizes, hist);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(sizes[i], 500);
        int classes = 0;
        for (int c = 0; c < BN_NUM_CLASSES; c++) {
            classes += hist[i][c] > 0;
            assert_true(hist[i][c] == 0 || hist[i][c] == 250 || hist[i][c] == 500);
        }
        assert_true(classes >= 1 && classes <= 2);
    }
    /* Uneven: 3 nodes x 3 shards over 100 images -> shard sizes 11 or 12. */
    o.nodes = 3;
    o.shards_per_node = 3;
    s_run_all(&o, 100, sizes, NULL);
    for (int i = 0; i < 3; i++)
        assert_true(sizes[i] >= 33 && sizes[i] <= 36);
    /* shards_per_node = 0 means the default 2. */
    bn_partition_opts_t a = { .kind = BN_PART_SHARDS, .seed = 5, .nodes = 4, .shards_per_node = 0 };
    bn_partition_opts_t b = { .kind = BN_PART_SHARDS, .seed = 5, .nodes = 4, .shards_per_node = 2 };
    assert_int_equal(s_run_all(&a, N, NULL, NULL), s_run_all(&b, N, NULL, NULL));
}

/* Mean over nodes (with images) of the largest class fraction. */
static double s_mean_max_fraction(uint32_t nodes, const uint32_t *sizes, uint32_t (*hist)[BN_NUM_CLASSES])
{
    double acc = 0;
    uint32_t used = 0;
    for (uint32_t i = 0; i < nodes; i++) {
        if (!sizes[i])
            continue;
        uint32_t mx = 0;
        for (int c = 0; c < BN_NUM_CLASSES; c++)
            mx = BN_MAX(mx, hist[i][c]);
        acc += (double) mx / sizes[i];
        used++;
    }
    return acc / used;
}

static void test_dirichlet(void **state)
{
    (void) state;
    uint32_t sizes[10], hist[10][BN_NUM_CLASSES];
    bn_partition_opts_t o = { .kind = BN_PART_DIRICHLET, .seed = 2, .nodes = 10, .alpha = 0.1 };
    s_run_all(&o, N, sizes, hist);
    double skewed = s_mean_max_fraction(10, sizes, hist);
    o.alpha = 1000.0;
    s_run_all(&o, N, sizes, hist);
    double flat = s_mean_max_fraction(10, sizes, hist);
    /* iid-like: every node ~1000 images, largest class near 0.1 */
    for (int i = 0; i < 10; i++)
        assert_true(sizes[i] > 800 && sizes[i] < 1200);
    assert_true(flat < 0.16);
    assert_true(skewed > 0.5);
    /* Very small alpha (draws underflow to 0): still disjoint and complete. */
    o.alpha = 1e-4;
    s_run_all(&o, N, sizes, NULL);
    /* alpha = 0 means the default 0.5 */
    bn_partition_opts_t a = { .kind = BN_PART_DIRICHLET, .seed = 9, .nodes = 5, .alpha = 0.0 };
    bn_partition_opts_t b = { .kind = BN_PART_DIRICHLET, .seed = 9, .nodes = 5, .alpha = 0.5 };
    assert_int_equal(s_run_all(&a, N, NULL, NULL), s_run_all(&b, N, NULL, NULL));
}

static void s_all_hashes(uint64_t *h)
{
    bn_partition_opts_t o[3] = {
        { .kind = BN_PART_IID, .seed = 42, .nodes = 13 },
        { .kind = BN_PART_SHARDS, .seed = 42, .nodes = 13, .shards_per_node = 3 },
        { .kind = BN_PART_DIRICHLET, .seed = 42, .nodes = 13, .alpha = 0.3 },
    };
    for (int i = 0; i < 3; i++)
        h[i] = s_run_all(&o[i], N, NULL, NULL);
}

static void test_deterministic_across_processes(void **state)
{
    (void) state;
    uint64_t child[3], mine[3];
    bn_fx_child_words(s_all_hashes, child, 3);
    s_all_hashes(mine);
    for (int i = 0; i < 3; i++)
        assert_int_equal(child[i], mine[i]);
    /* and a different seed gives a different assignment */
    bn_partition_opts_t o = { .kind = BN_PART_IID, .seed = 43, .nodes = 13 };
    assert_true(s_run_all(&o, N, NULL, NULL) != mine[0]);
    /* kinds differ from each other */
    assert_true(mine[0] != mine[1] && mine[1] != mine[2]);
}

static void test_bad_arguments(void **state)
{
    (void) state;
    char err[256] = "";
    uint32_t *idx = (uint32_t *) 1, count = 99;
    bn_partition_opts_t o = { .kind = BN_PART_IID, .seed = 1, .nodes = 0 };
    assert_int_equal(bn_partition_node(&o, s_labels, N, 0, &idx, &count, err, sizeof err), BN_EARG);
    assert_null(idx);
    assert_int_equal(count, 0);
    o.nodes = 4;
    assert_int_equal(bn_partition_node(&o, s_labels, N, 4, &idx, &count, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "node id 4"));
    o.kind = BN_PART_SHARDS;
    o.shards_per_node = 30;
    assert_int_equal(bn_partition_node(&o, s_labels, 100, 0, &idx, &count, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "120 shards > 100"));
    o.kind = BN_PART_DIRICHLET;
    o.alpha = -1.0;
    assert_int_equal(bn_partition_node(&o, s_labels, N, 0, &idx, &count, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "alpha"));
    o.kind = (bn_partition_kind_t) 9;
    assert_int_equal(bn_partition_node(&o, s_labels, N, 0, &idx, &count, err, sizeof err), BN_EARG);
    uint8_t bad[3] = { 1, 10, 2 };
    o.kind = BN_PART_IID;
    assert_int_equal(bn_partition_node(&o, bad, 3, 0, &idx, &count, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "label 10 at index 1"));
    /* empty training set: nothing to hand out, but not an error */
    assert_int_equal(bn_partition_node(&o, s_labels, 0, 0, &idx, &count, err, sizeof err), BN_OK);
    assert_int_equal(count, 0);
    free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_name),
        cmocka_unit_test(test_iid_balanced),
        cmocka_unit_test(test_shards_label_skew),
        cmocka_unit_test(test_dirichlet),
        cmocka_unit_test(test_deterministic_across_processes),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
