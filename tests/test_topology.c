/*  test_topology.c -- ER draws (determinism within and across processes,
 *  epochs, constraints), edge-list files (round trip, malformed lines),
 *  fingerprints, statistics, and the shipped topologies/ files.
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

#include "rng.h"
#include "topology.h"
#include "fixture.h"

static char s_dir[256];

static int s_setup(void **state)
{
    (void) state;
    return bn_fx_tmpdir(s_dir, sizeof s_dir, "topology");
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

static const char *s_write(const char *name, const char *text)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", s_dir, name);
    bn_fx_write(p, text);
    return p;
}

/* Checks the CSR invariants: sorted, no self-loop, no duplicate, symmetric. */
static void s_check_csr(const bn_topology_t *t)
{
    assert_int_equal(t->offsets[0], 0);
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t deg;
        const uint32_t *nb = bn_topology_neighbors(t, i, &deg);
        for (uint32_t k = 0; k < deg; k++) {
            assert_true(nb[k] < t->n);
            assert_true(nb[k] != i);
            if (k > 0)
                assert_true(nb[k - 1] < nb[k]);
            assert_true(bn_topology_has_edge(t, nb[k], i));
        }
    }
}

static void test_er_deterministic_and_constraints(void **state)
{
    (void) state;
    char err[256];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        bn_topology_t a, b;
        assert_int_equal(bn_topology_er(&a, 50, 0.6, 21, seed, BN_TOPOLOGY_STATIC, err, sizeof err), BN_OK);
        assert_int_equal(bn_topology_er(&b, 50, 0.6, 21, seed, BN_TOPOLOGY_STATIC, err, sizeof err), BN_OK);
        assert_int_equal(a.fingerprint, b.fingerprint);
        assert_memory_equal(a.offsets, b.offsets, 51 * sizeof(uint32_t));
        assert_memory_equal(a.adj, b.adj, a.offsets[50] * sizeof(uint32_t));
        assert_true(a.draws >= 1);
        s_check_csr(&a);
        bn_topology_stats_t s;
        bn_topology_stats(&a, &s);
        assert_true(s.connected);
        assert_true(s.min_degree >= 21);
        assert_true(s.diameter >= 1 && s.diameter <= 3);
        /* 1225 possible edges at p = 0.6: mean 735, sd ~17 */
        assert_true(s.edges > 600 && s.edges < 870);
        bn_topology_free(&a);
        bn_topology_free(&b);
        assert_null(a.adj);
    }
    /* Sparse graph that needs redraws: n = 30, p = 0.1, min degree 2. */
    bn_topology_t t;
    uint32_t total_draws = 0;
    for (uint64_t seed = 0; seed < 5; seed++) {
        assert_int_equal(bn_topology_er(&t, 30, 0.1, 2, seed, 0, err, sizeof err), BN_OK);
        bn_topology_stats_t s;
        bn_topology_stats(&t, &s);
        assert_true(s.connected);
        assert_true(s.min_degree >= 2);
        total_draws += t.draws;
        bn_topology_free(&t);
    }
    assert_true(total_draws > 5);   /* P(qualifies) is well below 1 here */
}

static void test_er_epochs_differ(void **state)
{
    (void) state;
    char err[256];
    uint64_t fp[6];
    for (uint32_t e = 0; e < 6; e++) {
        bn_topology_t t;
        uint32_t epoch = e < 5 ? e : BN_TOPOLOGY_STATIC;
        assert_int_equal(bn_topology_er(&t, 20, 0.6, 9, 7, epoch, err, sizeof err), BN_OK);
        fp[e] = t.fingerprint;
        bn_topology_free(&t);
    }
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            assert_true(fp[i] != fp[j]);
    /* A different seed, same epoch, differs too. */
    bn_topology_t t;
    assert_int_equal(bn_topology_er(&t, 20, 0.6, 9, 8, 0, err, sizeof err), BN_OK);
    assert_true(t.fingerprint != fp[0]);
    bn_topology_free(&t);
}

static uint64_t s_graph_hash(uint64_t seed, uint32_t epoch)
{
    char err[256];
    bn_topology_t t;
    if (bn_topology_er(&t, 50, 0.6, 21, seed, epoch, err, sizeof err) != BN_OK)
        return 0;
    /* Hash the adjacency itself, independently of the stored fingerprint. */
    uint64_t h = t.fingerprint;
    for (uint32_t k = 0; k < t.offsets[t.n]; k++)
        h = bn_mix64(h ^ t.adj[k]);
    bn_topology_free(&t);
    return h;
}

/* Two graphs' hashes: static and a later epoch's, other seeds. */
static void s_two_hashes(uint64_t *h)
{
    h[0] = s_graph_hash(1, BN_TOPOLOGY_STATIC);
    h[1] = s_graph_hash(99, 3);
}

static void test_er_same_across_processes(void **state)
{
    (void) state;
    uint64_t got[2], mine[2];
    bn_fx_child_words(s_two_hashes, got, 2);
    s_two_hashes(mine);
    assert_true(got[0] != 0);
    assert_int_equal(got[0], mine[0]);
    assert_int_equal(got[1], mine[1]);
}

static void test_er_bad_arguments(void **state)
{
    (void) state;
    char err[256];
    bn_topology_t t;
    assert_int_equal(bn_topology_er(&t, 0, 0.5, 0, 1, 0, err, sizeof err), BN_EARG);
    assert_int_equal(bn_topology_er(&t, 10, -0.1, 0, 1, 0, err, sizeof err), BN_EARG);
    assert_int_equal(bn_topology_er(&t, 10, 1.1, 0, 1, 0, err, sizeof err), BN_EARG);
    assert_int_equal(bn_topology_er(&t, 10, NAN, 0, 1, 0, err, sizeof err), BN_EARG);
    assert_int_equal(bn_topology_er(&t, 10, 0.5, 10, 1, 0, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "min degree 10"));
    /* p = 0 never connects 5 nodes: every draw fails, message says why. */
    assert_int_equal(bn_topology_er(&t, 5, 0.0, 0, 1, 0, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "connect"));
    assert_null(t.adj);
    /* p = 1 is the complete graph; n = 1 is a single node. */
    assert_int_equal(bn_topology_er(&t, 6, 1.0, 5, 1, 0, err, sizeof err), BN_OK);
    bn_topology_stats_t s;
    bn_topology_stats(&t, &s);
    assert_int_equal(s.edges, 15);
    assert_int_equal(s.diameter, 1);
    assert_int_equal(t.draws, 1);
    bn_topology_free(&t);
    assert_int_equal(bn_topology_er(&t, 1, 0.3, 0, 1, 0, err, sizeof err), BN_OK);
    bn_topology_stats(&t, &s);
    assert_int_equal(s.edges, 0);
    assert_true(s.connected);
    assert_int_equal(s.diameter, 0);
    bn_topology_free(&t);
}

static void test_file_round_trip_and_stats(void **state)
{
    (void) state;
    char err[256];
    bn_topology_t a, b;
    assert_int_equal(bn_topology_er(&a, 20, 0.3, 2, 5, 2, err, sizeof err), BN_OK);
    char p[512];
    snprintf(p, sizeof p, "%s/g.edges", s_dir);
    assert_int_equal(bn_topology_save(&a, p, err, sizeof err), BN_OK);
    assert_int_equal(bn_topology_load(&b, p, 0, err, sizeof err), BN_OK);
    assert_int_equal(b.n, 20);
    assert_int_equal(a.fingerprint, b.fingerprint);
    assert_memory_equal(a.offsets, b.offsets, 21 * sizeof(uint32_t));
    assert_memory_equal(a.adj, b.adj, a.offsets[20] * sizeof(uint32_t));
    bn_topology_free(&a);
    bn_topology_free(&b);

    /* Path 0-1-2-3 plus isolated node 4 (via the nodes header): hand-checked stats. */
    const char *f = s_write("g.edges", "# a path\n# nodes: 5\n0 1\n 2   1 # comment\n\n2\t3\r\n");
    assert_int_equal(bn_topology_load(&a, f, 0, err, sizeof err), BN_OK);
    assert_int_equal(a.n, 5);
    bn_topology_stats_t s;
    bn_topology_stats(&a, &s);
    assert_int_equal(s.edges, 3);
    assert_int_equal(s.min_degree, 0);
    assert_int_equal(s.max_degree, 2);
    assert_float_equal(s.mean_degree, 6.0 / 5.0, 1e-12);
    assert_false(s.connected);
    assert_int_equal(s.diameter, UINT32_MAX);
    assert_true(bn_topology_has_edge(&a, 1, 2));
    assert_true(bn_topology_has_edge(&a, 2, 1));
    assert_false(bn_topology_has_edge(&a, 0, 2));
    assert_false(bn_topology_has_edge(&a, 0, 99));
    uint32_t deg;
    const uint32_t *nb = bn_topology_neighbors(&a, 2, &deg);
    assert_int_equal(deg, 2);
    assert_int_equal(nb[0], 1);
    assert_int_equal(nb[1], 3);
    bn_topology_free(&a);
    /* Caller's n overrides; without the header the isolated node is gone. */
    f = s_write("g.edges", "0 1\n1 2\n2 3\n");
    assert_int_equal(bn_topology_load(&a, f, 0, err, sizeof err), BN_OK);
    assert_int_equal(a.n, 4);
    bn_topology_stats(&a, &s);
    assert_true(s.connected);
    assert_int_equal(s.diameter, 3);
    bn_topology_free(&a);
    assert_int_equal(bn_topology_load(&a, f, 6, err, sizeof err), BN_OK);
    assert_int_equal(a.n, 6);
    bn_topology_free(&a);
}

static void test_fingerprint(void **state)
{
    (void) state;
    char err[256];
    bn_topology_t a, b;
    /* Definition (docs/topology.md): h = mix(n ^ salt), then h = mix(h ^ (u << 32 | v)). */
    const char *f = s_write("g.edges", "1 0\n1 2\n");
    assert_int_equal(bn_topology_load(&a, f, 0, err, sizeof err), BN_OK);
    uint64_t h = bn_mix64(3 ^ 0x746f706f6c6f6779ULL);
    h = bn_mix64(h ^ 1ULL);
    h = bn_mix64(h ^ (1ULL << 32 | 2));
    assert_int_equal(a.fingerprint, h);
    /* Edge order and direction in the file do not matter. */
    f = s_write("g.edges", "2 1\n0 1\n");
    assert_int_equal(bn_topology_load(&b, f, 0, err, sizeof err), BN_OK);
    assert_int_equal(a.fingerprint, b.fingerprint);
    bn_topology_free(&b);
    /* Changing one edge changes it; so does n. */
    f = s_write("g.edges", "1 0\n0 2\n");
    assert_int_equal(bn_topology_load(&b, f, 0, err, sizeof err), BN_OK);
    assert_true(a.fingerprint != b.fingerprint);
    bn_topology_free(&b);
    f = s_write("g.edges", "1 0\n1 2\n");
    assert_int_equal(bn_topology_load(&b, f, 4, err, sizeof err), BN_OK);
    assert_true(a.fingerprint != b.fingerprint);
    bn_topology_free(&b);
    bn_topology_free(&a);
}

/* Loads text and expects BN_EFORMAT with ":line:" and `what` in the message. */
static void s_expect_bad(const char *text, uint32_t n, int line, const char *what)
{
    char err[256] = "", tag[32];
    bn_topology_t t;
    const char *p = s_write("bad.edges", text);
    int rc = bn_topology_load(&t, p, n, err, sizeof err);
    if (line > 0)
        snprintf(tag, sizeof tag, ":%d:", line);
    else
        snprintf(tag, sizeof tag, "bad.edges");
    if (rc != BN_EFORMAT || !strstr(err, tag) || !strstr(err, what))
        fail_msg("for %s expected BN_EFORMAT with '%s' and '%s', got %d: %s", text, tag, what, rc, err);
    assert_null(t.adj);
    assert_null(t.offsets);
}

static void test_malformed_files(void **state)
{
    (void) state;
    s_expect_bad("0 1\n1 1\n", 0, 2, "self-loop");
    s_expect_bad("# c\n0 1\n1 2\n1 0\n", 0, 4, "duplicate edge 0 1 (first on line 2)");
    s_expect_bad("0 1\n1 2\n1 2\n", 0, 3, "duplicate");
    s_expect_bad("0 1\nx 2\n", 0, 2, "expected");
    s_expect_bad("0 1\n3\n", 0, 2, "expected");
    s_expect_bad("0 -1\n", 0, 1, "expected");
    s_expect_bad("0 1.5\n", 0, 1, "expected");
    s_expect_bad("0 1 2\n", 0, 1, "unexpected");
    s_expect_bad("0 99999999999\n", 0, 1, "expected");
    s_expect_bad("0 1\n\n0 5\n", 5, 3, "node id 5 out of range 0..4");
    s_expect_bad("0 4000000000\n", 0, 1, "out of range");
    s_expect_bad("# nodes: 3\n0 5\n", 0, 0, "nodes: 3");
    s_expect_bad("# nothing\n\n", 0, 0, "no edges");
    /* An empty file is refused also when the caller knows n (a node does):
     * before, it built a graph of isolated nodes (and passed NULL to qsort). */
    s_expect_bad("", 4, 0, "no edges");
    s_expect_bad("# nodes: 4\n", 4, 0, "no edges");
    s_expect_bad("# nodes: 4\n", 0, 0, "no edges");
    char err[256] = "";
    bn_topology_t t;
    char p[600];
    snprintf(p, sizeof p, "%s/missing.edges", s_dir);
    assert_int_equal(bn_topology_load(&t, p, 0, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "missing.edges"));
}

/* Line length is bounded before allocation: /dev/zero (endless NUL bytes)
 * and an endless line fail at once instead of growing without bound. */
static void test_bounded_lines(void **state)
{
    (void) state;
    char err[256] = "";
    bn_topology_t t;
    assert_int_equal(bn_topology_load(&t, "/dev/zero", 4, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, ":1: NUL"));
    char p[600];
    snprintf(p, sizeof p, "%s/long.edges", s_dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("0 1\n# ", f);
    for (int i = 0; i < 5000; i++)
        fputc('x', f);
    fputs("\n1 2\n", f);
    fclose(f);
    assert_int_equal(bn_topology_load(&t, p, 0, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, ":2: line longer than 4096"));
    assert_null(t.adj);
    unlink(p);
    assert_int_equal(bn_topology_load(&t, p, 0, err, sizeof err), BN_EIO);
    assert_string_equal(strstr(err, ": cannot open: "), ": cannot open: No such file or directory");
}

/* The shipped ER files are what bn_topology_er draws today. */
static void test_shipped_topologies(void **state)
{
    (void) state;
    const char *root = getenv("BN_SOURCE_ROOT");
    if (!root)
        root = ".";
    struct { const char *file; uint32_t n, d; } rows[] = {
        { "er-n50-p0.6-seed1.edges", 50, 21 },
        { "er-n20-p0.6-seed1.edges", 20, 9 },
        { "er-n10-p0.6-seed1.edges", 10, 3 },
    };
    char err[256], p[1024];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/topologies/%s", root, rows[i].file);
        bn_topology_t a, b;
        int rc = bn_topology_load(&a, p, 0, err, sizeof err);
        if (rc != BN_OK)
            fail_msg("%s", err);
        assert_int_equal(bn_topology_er(&b, rows[i].n, 0.6, rows[i].d, 1, BN_TOPOLOGY_STATIC,
                                        err, sizeof err), BN_OK);
        assert_int_equal(a.n, rows[i].n);
        assert_int_equal(a.fingerprint, b.fingerprint);
        assert_memory_equal(a.adj, b.adj, a.offsets[a.n] * sizeof(uint32_t));
        bn_topology_free(&a);
        bn_topology_free(&b);
    }
    snprintf(p, sizeof p, "%s/topologies/ring-8.edges", root);
    bn_topology_t r;
    assert_int_equal(bn_topology_load(&r, p, 0, err, sizeof err), BN_OK);
    bn_topology_stats_t s;
    bn_topology_stats(&r, &s);
    assert_int_equal(s.edges, 8);
    assert_int_equal(s.min_degree, 2);
    assert_int_equal(s.max_degree, 2);
    assert_int_equal(s.diameter, 4);
    bn_topology_free(&r);
    snprintf(p, sizeof p, "%s/topologies/complete-8.edges", root);
    assert_int_equal(bn_topology_load(&r, p, 0, err, sizeof err), BN_OK);
    bn_topology_stats(&r, &s);
    assert_int_equal(s.edges, 28);
    assert_int_equal(s.min_degree, 7);
    assert_int_equal(s.diameter, 1);
    bn_topology_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_er_deterministic_and_constraints),
        cmocka_unit_test(test_er_epochs_differ),
        cmocka_unit_test(test_er_same_across_processes),
        cmocka_unit_test(test_er_bad_arguments),
        cmocka_unit_test(test_file_round_trip_and_stats),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_bounded_lines),
        cmocka_unit_test(test_shipped_topologies),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
