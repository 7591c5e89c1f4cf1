/*  test_aggregate.c -- every aggregation rule against hand-computed values,
 *  the common NaN / infinity pre-filter, telemetry weights, that
 *  bn_rule_aggregate does not allocate, and robustness under a large
 *  "reverse" vector.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "layers.h"
#include "rng.h"
#include "rules/rules.h"

/* ---- allocation counter (glibc; not under AddressSanitizer) ------------- */
#if !defined(__SANITIZE_ADDRESS__) && defined(__GLIBC__)
#define S_COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void  __libc_free(void *);
static int  s_counting;
static long s_allocs;
void *malloc(size_t n)
{
    s_allocs += s_counting;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    s_allocs += s_counting;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    s_allocs += s_counting;
    return __libc_realloc(p, n);
}
int posix_memalign(void **p, size_t align, size_t n)
{
    s_allocs += s_counting;
    *p = __libc_memalign(align, n);
    return *p ? 0 : ENOMEM;
}
void *aligned_alloc(size_t align, size_t n)
{
    s_allocs += s_counting;
    return __libc_memalign(align, n);
}
void free(void *p)
{
    __libc_free(p);
}
#endif

#define TOL 1e-5

/* Runs `opts` on k neighbour rows of `nb` (k x dim, row-major). */
static int s_run(const bn_rule_opts_t *opts, size_t dim, const float *x_prev, const float *x_self,
                 uint32_t k, const float *nb, float *x_out, float *weights, bn_rule_stats_t *st)
{
    bn_rule_t *r = bn_rule_new(opts, dim, k);
    assert_non_null(r);
    static const float *ptr[512];
    static uint32_t ids[512];
    assert_true(k <= 512);
    for (uint32_t j = 0; j < k; j++) {
        ptr[j] = nb + (size_t) j * dim;
        ids[j] = 100 + j;
    }
    bn_agg_input_t in = { .dim = dim, .x_prev = x_prev, .x_self = x_self, .k = k,
                          .x_nb = ptr, .nb_id = ids, .oracle = NULL };
    int rc = bn_rule_aggregate(r, &in, x_out, weights);
    if (st)
        *st = *bn_rule_stats(r);
    bn_rule_destroy(&r);
    assert_null(r);
    return rc;
}

/* A rule by name (the registry has no enum beyond standalone and mean). */
static bn_rule_kind_t RK(const char *name);

/* The rule asks the node's data (mozi, bygars, bygars++). */
static bool s_needs_oracle(bn_rule_kind_t kind)
{
    bn_rule_opts_t o;
    bn_rule_opts_default(&o, kind);
    bn_rule_t *r = bn_rule_new(&o, 2, 1);
    assert_non_null(r);
    bool yes = bn_rule_ops_of(r)->flags & BN_RULE_F_ORACLE;
    bn_rule_destroy(&r);
    return yes;
}

static bn_rule_kind_t RK(const char *name)
{
    bn_rule_kind_t k = UINT32_MAX;
    assert_int_equal(bn_rule_parse(name, &k), BN_OK);
    return k;
}

static void s_opts(bn_rule_opts_t *o, bn_rule_kind_t kind)
{
    bn_rule_opts_default(o, kind);
}

/* ---- names ---------------------------------------------------------------- */
static void test_names_round_trip(void **state)
{
    (void) state;
    for (uint32_t k = 0; k < bn_rule_count(); k++) {
        bn_rule_kind_t back = bn_rule_count();
        const char *name = bn_rule_name((bn_rule_kind_t) k);
        assert_int_equal(bn_rule_parse(name, &back), BN_OK);
        assert_int_equal(back, k);
    }
    bn_rule_kind_t kind;
    assert_int_equal(bn_rule_parse("similarity", &kind), BN_OK);
    assert_int_equal(kind, RK("similarity"));
    assert_int_equal(bn_rule_parse("trimmed_mean", &kind), BN_EARG);
    assert_int_equal(bn_rule_parse("", &kind), BN_EARG);
    assert_int_equal(bn_rule_parse(NULL, &kind), BN_EARG);
    assert_string_equal(bn_rule_name(bn_rule_count()), "unknown");
}

/* ---- the registry and the parameter store --------------------------------- */
static void test_registry_tables(void **state)
{
    (void) state;
    assert_string_equal(bn_rule_name(BN_RULE_STANDALONE), "standalone");
    assert_string_equal(bn_rule_name(BN_RULE_MEAN), "mean");
    /* distinct rule names; every distinct parameter row has a distinct name,
     * a default inside its range, and is found by that name */
    for (uint32_t a = 0; a < bn_rule_count(); a++)
        for (uint32_t b = a + 1; b < bn_rule_count(); b++)
            assert_string_not_equal(bn_rule_name(a), bn_rule_name(b));
    size_t np = 0;
    for (const bn_rule_param_t *p; (p = bn_rule_param_at(np)) != NULL; np++) {
        assert_true(p->def >= p->min && p->def <= p->max);
        if (p->type == BN_RULE_PARAM_U32)
            assert_true(p->def == floor(p->def));
        assert_ptr_equal(bn_rule_param_find(p->name), p);
        for (size_t q = 0; q < np; q++)
            assert_string_not_equal(bn_rule_param_at(q)->name, p->name);
        bn_rule_opts_t o;
        bn_rule_opts_default(&o, BN_RULE_MEAN);
        assert_false(bn_rule_opts_isset(&o, p->name));
        assert_true(bn_rule_opts_get(&o, p->name) == p->def);
    }
    assert_true(np >= 9);
    /* rows repeated by name in several rule files agree */
    for (uint32_t r = 0; r < bn_rule_count(); r++) {
        bn_rule_opts_t o;
        bn_rule_opts_default(&o, r);
        bn_rule_t *rule = bn_rule_new(&o, 3, 2);
        assert_non_null(rule);
        const bn_rule_ops_t *ops = bn_rule_ops_of(rule);
        for (size_t i = 0; ops->params && ops->params[i]; i++) {
            const bn_rule_param_t *p = ops->params[i], *q = bn_rule_param_find(p->name);
            assert_non_null(q);
            assert_int_equal(p->type, q->type);
            assert_true(p->def == q->def && p->min == q->min && p->max == q->max);
        }
        bn_rule_destroy(&rule);
    }
    assert_null(bn_rule_param_find("no-such-parameter"));
    assert_null(bn_rule_param_at(np));
    /* each rule object is created with the defaults, and its ops are its row */
    for (uint32_t k = 0; k < bn_rule_count(); k++) {
        bn_rule_opts_t o;
        bn_rule_opts_default(&o, k);
        bn_rule_t *r = bn_rule_new(&o, 3, 2);
        assert_non_null(r);
        assert_string_equal(bn_rule_ops_of(r)->name, bn_rule_name(k));
        bn_rule_destroy(&r);
    }
}

static void test_param_store(void **state)
{
    (void) state;
    bn_rule_opts_t o;
    char err[256];
    bn_rule_opts_default(&o, RK("trimmed-mean"));
    assert_int_equal(bn_rule_opts_set(&o, "trim", "3", err, sizeof err), BN_OK);
    assert_true(bn_rule_opts_isset(&o, "trim"));
    assert_true(bn_rule_opts_get(&o, "trim") == 3.0);
    assert_int_equal(bn_rule_opts_set(&o, "trim", "4", err, sizeof err), BN_OK);   /* overwrite */
    assert_true(bn_rule_opts_get(&o, "trim") == 4.0);
    assert_int_equal(o.n_set, 1);
    assert_int_equal(bn_rule_opts_set(&o, "trim", "1.5", err, sizeof err), BN_EARG); /* integer */
    assert_non_null(strstr(err, "1.5"));
    assert_int_equal(bn_rule_opts_set(&o, "trim", "-1", err, sizeof err), BN_EARG);
    assert_int_equal(bn_rule_opts_set(&o, "trim", "x", err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "not a number"));
    assert_int_equal(bn_rule_opts_set(&o, "beta", "nan", err, sizeof err), BN_EARG);
    assert_int_equal(bn_rule_opts_set(&o, "nope", "1", err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "nope"));
    /* float parameters are stored as the float the rule reads */
    assert_int_equal(bn_rule_opts_set(&o, "c", "0.1", err, sizeof err), BN_OK);
    assert_true(bn_rule_opts_get(&o, "c") == (double) 0.1f);
    /* canonical text: the rule's own parameters (and bucketing), effective values */
    char buf[256];
    bn_rule_opts_canon(&o, buf, sizeof buf);
    assert_string_equal(buf, "rule=trimmed-mean trim=4 bucketing=0");
    bn_rule_opts_default(&o, RK("similarity"));
    bn_rule_opts_canon(&o, buf, sizeof buf);
    assert_string_equal(buf, "rule=similarity c=5");
    /* bucketing only before rules that take it */
    bn_rule_opts_default(&o, RK("similarity"));
    assert_int_equal(bn_rule_opts_put(&o, "bucketing", 2), BN_OK);
    assert_int_equal(bn_rule_opts_check(&o, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "trimmed-mean"));
    o.kind = RK("median");
    assert_int_equal(bn_rule_opts_check(&o, err, sizeof err), BN_OK);
    o.kind = bn_rule_count();
    assert_int_equal(bn_rule_opts_check(&o, err, sizeof err), BN_EARG);
    /* the listing names every rule and parameter */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    bn_rule_list(f);
    fclose(f);
    for (uint32_t k = 0; k < bn_rule_count(); k++)
        assert_non_null(strstr(text, bn_rule_name(k)));
    for (size_t i = 0; bn_rule_param_at(i); i++) {
        char opt[64];
        snprintf(opt, sizeof opt, "--%s ", bn_rule_param_at(i)->name);
        assert_non_null(strstr(text, opt));
    }
    free(text);
}

static void test_bad_options_and_args(void **state)
{
    (void) state;
    bn_rule_opts_t o;
    s_opts(&o, RK("similarity"));
    assert_int_equal(bn_rule_opts_put(&o, "c", -1.0f), BN_EARG);   /* refused when set */
    o.set[0].param = bn_rule_param_find("c");   /* and when smuggled in */
    o.set[0].value = -1.0;
    o.n_set = 1;
    assert_null(bn_rule_new(&o, 4, 2));
    s_opts(&o, BN_RULE_MEAN);
    assert_int_equal(bn_rule_opts_put(&o, "bucketing", 2), BN_OK);                     /* bucketing only before TM/median/krum */
    assert_null(bn_rule_new(&o, 4, 2));
    s_opts(&o, BN_RULE_MEAN);
    assert_null(bn_rule_new(&o, 0, 2));
    bn_rule_t *r = bn_rule_new(&o, 4, 1);
    assert_non_null(r);
    float x[4] = { 0 }, out[4];
    const float *ptr[2] = { x, x };
    bn_agg_input_t in = { .dim = 4, .x_prev = x, .x_self = x, .k = 2, .x_nb = ptr };
    assert_int_equal(bn_rule_aggregate(r, &in, out, NULL), BN_EARG);   /* k > max_k */
    in.k = 1;
    in.dim = 5;
    assert_int_equal(bn_rule_aggregate(r, &in, out, NULL), BN_EARG);   /* dim differs */
    bn_rule_destroy(&r);
    bn_rule_destroy(&r);                 /* safe twice */
}

/* ---- mean, standalone ------------------------------------------------------ */
static void test_mean_and_standalone(void **state)
{
    (void) state;
    float prev[3] = { 0, 0, 0 }, self[3] = { 1, 2, 3 };
    float nb[2 * 3] = { 3, 2, 1,   -1, 5, 2 };
    float out[3], w[3];
    bn_rule_opts_t o;
    s_opts(&o, BN_RULE_MEAN);
    assert_int_equal(s_run(&o, 3, prev, self, 2, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 1.0, TOL);
    assert_float_equal(out[1], 3.0, TOL);
    assert_float_equal(out[2], 2.0, TOL);
    for (int j = 0; j < 3; j++)
        assert_float_equal(w[j], 1.0 / 3.0, TOL);

    s_opts(&o, BN_RULE_STANDALONE);
    assert_int_equal(s_run(&o, 3, prev, self, 2, nb, out, w, NULL), BN_OK);
    assert_memory_equal(out, self, sizeof self);
    assert_float_equal(w[0], 0.0, 0);
    assert_float_equal(w[1], 0.0, 0);
    assert_float_equal(w[2], 1.0, 0);
}

/* ---- trimmed mean -------------------------------------------------------- */
static void test_trimmed_mean_odd(void **state)
{
    (void) state;
    /* n = 5 (4 neighbours + self), b = 1; columns are hand-sorted below */
    enum { D = 5 };
    float prev[D] = { 0 };
    float self[D] = { 1, 5, -1, 0, 1 };
    float nb[4 * D] = {
        2, 5, -1, 10, 1,
        3, 5, -1, -10, 2,
        4, 1, -1, 2, 3,
        100, 9, -1, 4, 3,
    };
    float out[D], w[5];
    bn_rule_opts_t o;
    s_opts(&o, RK("trimmed-mean"));
    assert_int_equal(bn_rule_opts_put(&o, "trim", 1), BN_OK);
    bn_rule_stats_t st;
    assert_int_equal(s_run(&o, D, prev, self, 4, nb, out, w, &st), BN_OK);
    assert_float_equal(out[0], 3.0, TOL);        /* {1,2,3,4,100}  -> (2+3+4)/3   */
    assert_float_equal(out[1], 5.0, TOL);        /* {5,5,5,1,9}    -> ties at 5   */
    assert_float_equal(out[2], -1.0, TOL);       /* all equal                     */
    assert_float_equal(out[3], 2.0, TOL);        /* {0,10,-10,2,4} -> (0+2+4)/3   */
    assert_float_equal(out[4], 2.0, TOL);        /* {1,1,2,3,3}    -> (1+2+3)/3   */
    assert_int_equal(st.degenerate, 0);
    double sw = 0;
    for (int j = 0; j < 5; j++)
        sw += w[j];
    assert_float_equal(sw, 1.0, 1e-5);
    /* the 100 in column 0 was trimmed: neighbour 3 kept fewer values than neighbour 1 */
    assert_true(w[3] <= w[1]);
}

static void test_trimmed_mean_even_and_few(void **state)
{
    (void) state;
    enum { D = 2 };
    float prev[D] = { 0 };
    float self[D] = { 1, 7 };
    float nb[5 * D] = { 2, 7,  3, 7,  4, 1,  5, 9,  6, 7 };
    float out[D];
    bn_rule_opts_t o;
    s_opts(&o, RK("trimmed-mean"));
    assert_int_equal(bn_rule_opts_put(&o, "trim", 2), BN_OK);
    bn_rule_stats_t st;
    /* n = 6, b = 2: {1..6} -> (3+4)/2; {7,7,7,1,9,7} -> 7 */
    assert_int_equal(s_run(&o, D, prev, self, 5, nb, out, NULL, &st), BN_OK);
    assert_float_equal(out[0], 3.5, TOL);
    assert_float_equal(out[1], 7.0, TOL);
    assert_int_equal(st.degenerate, 0);

    /* n = 4 < 2b + 1 = 5: b drops to 1, i.e. the median {1,2,3,4} -> 2.5 */
    float self2[D] = { 1, 20 };
    float nb2[3 * D] = { 2, 10,  10, 1,  4, 2 };
    assert_int_equal(s_run(&o, D, prev, self2, 3, nb2, out, NULL, &st), BN_OK);
    assert_float_equal(out[0], 3.0, TOL);        /* {1,2,10,4} -> (2+4)/2 */
    assert_float_equal(out[1], 6.0, TOL);        /* {20,10,1,2} -> (2+10)/2 */
    assert_int_equal(st.degenerate, 1);

    /* b = 3 and n = 5: b drops to 2, the median */
    assert_int_equal(bn_rule_opts_put(&o, "trim", 3), BN_OK);
    float nb3[4 * D] = { 2, 0,  3, 0,  40, 0,  -4, 0 };
    assert_int_equal(s_run(&o, D, prev, self, 4, nb3, out, NULL, &st), BN_OK);
    assert_float_equal(out[0], 2.0, TOL);        /* {1,2,3,40,-4} */
    assert_int_equal(st.degenerate, 1);

    /* alone (no neighbour): x_out = x_self */
    assert_int_equal(s_run(&o, D, prev, self, 0, nb3, out, NULL, &st), BN_OK);
    assert_float_equal(out[0], 1.0, 0);
    assert_float_equal(out[1], 7.0, 0);
}

/* ---- median -------------------------------------------------------------- */
static void test_median(void **state)
{
    (void) state;
    enum { D = 3 };
    float prev[D] = { 0 };
    float self[D] = { 3, 4, -1 };
    float nb[3 * D] = { 1, 1, -1,  2, 3, -1,  1e30f, 2, 5 };
    float out[D], w[4];
    bn_rule_opts_t o;
    s_opts(&o, RK("median"));
    /* n = 4 (even): {3,1,2,1e30} -> (2+3)/2; {4,1,3,2} -> 2.5; {-1,-1,-1,5} -> -1 */
    assert_int_equal(s_run(&o, D, prev, self, 3, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 2.5, TOL);
    assert_float_equal(out[1], 2.5, TOL);
    assert_float_equal(out[2], -1.0, TOL);
    /* n = 3 (odd): {3,1,2} -> 2 */
    assert_int_equal(s_run(&o, D, prev, self, 2, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 2.0, TOL);
    assert_float_equal(out[1], 3.0, TOL);

    /* selection helper against a sort on random columns with ties */
    bn_rng_t r;
    bn_rng_seed(&r, 7, 99);
    float a[101], s[101];
    for (int trial = 0; trial < 200; trial++) {
        uint32_t n = 1 + (uint32_t) bn_rng_below(&r, 100);
        for (uint32_t i = 0; i < n; i++)
            a[i] = s[i] = (float) bn_rng_below(&r, 10);
        for (uint32_t i = 1; i < n; i++)     /* insertion sort as the reference */
            for (uint32_t j = i; j > 0 && s[j - 1] > s[j]; j--) {
                float t = s[j]; s[j] = s[j - 1]; s[j - 1] = t;
            }
        uint32_t kth = (uint32_t) bn_rng_below(&r, n);
        assert_float_equal(bn_select_kth(a, n, kth), s[kth], 0);
    }
}

/* trimmed mean and median on random columns (with ties, full SIMD groups and a
 * tail) against a sort of each column */
static int s_cmpf(const void *a, const void *b)
{
    float x = *(const float *) a, y = *(const float *) b;
    return (x > y) - (x < y);
}

static void test_trimmed_median_vs_sort(void **state)
{
    (void) state;
    enum { D = 203, KMAX = 300 };
    static float nb[KMAX * D], self[D], prev[D], out[D], col[KMAX + 1];
    bn_rng_t r;
    bn_rng_seed(&r, 21, 5);
    uint32_t ks[] = { 2, 5, 10, 29, 47, 60, 300 };   /* 301 > 256: quickselect median */
    for (size_t t = 0; t < BN_ARRAY_LEN(ks); t++) {
        uint32_t k = ks[t], n = k + 1;
        for (int c = 0; c < D; c++) {
            self[c] = (float) bn_rng_below(&r, 7) - 3.0f;     /* many ties */
            for (uint32_t j = 0; j < k; j++)
                nb[j * D + c] = c % 2 ? (float) bn_rng_normal(&r) : (float) bn_rng_below(&r, 7) - 3.0f;
        }
        for (int kind = 0; kind < 2; kind++) {
            bn_rule_opts_t o;
            s_opts(&o, kind ? RK("median") : RK("trimmed-mean"));
            assert_int_equal(bn_rule_opts_put(&o, "trim", (uint32_t) (n / 4)), BN_OK);
            assert_int_equal(s_run(&o, D, prev, self, k, nb, out, NULL, NULL), BN_OK);
            for (int c = 0; c < D; c++) {
                col[0] = self[c];
                for (uint32_t j = 0; j < k; j++)
                    col[j + 1] = nb[j * D + c];
                qsort(col, n, sizeof(float), s_cmpf);
                double ref = 0;
                if (kind) {
                    ref = n % 2 ? col[n / 2] : 0.5 * (col[n / 2 - 1] + col[n / 2]);
                } else {
                    uint32_t b = (uint32_t) bn_rule_opts_get(&o, "trim");
                    for (uint32_t i = b; i < n - b; i++)
                        ref += col[i];
                    ref /= (double) (n - 2 * b);
                }
                assert_float_equal(out[c], ref, 1e-5);
            }
        }
    }
}

/* The straightforward trimmed mean of trimmed_mean.c's definition: a sort of
 * the column under the total order (-0 before +0), L = rank b - 1, H = rank
 * n - b, then the set-order sum and the tie counts, all in float. */
static int32_t s_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (int32_t) (u ^ ((u >> 31) ? 0x7fffffffu : 0u));
}

static float s_ref_trimmed(const float *col, uint32_t n, uint32_t b)
{
    static float s[1024];
    memcpy(s, col, n * sizeof *s);
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && s_key(s[j - 1]) > s_key(s[j]); j--) {
            float t = s[j]; s[j] = s[j - 1]; s[j - 1] = t;
        }
    float L = s[b - 1], H = s[n - b];
    int32_t kl = s_key(L), kh = s_key(H);
    if (kl == kh)
        return L;
    float inv = 1.0f / (float) (n - 2 * b), sum = 0.0f;
    int32_t lt = 0, gt = 0, eql = 0, eqh = 0;
    for (uint32_t j = 0; j < n; j++) {
        int32_t k = s_key(col[j]);
        if (k > kl && k < kh)
            sum += col[j] * inv;
        lt += k < kl;
        gt += k > kh;
        eql += k == kl;
        eqh += k == kh;
    }
    float nl = (float) (eql - ((int32_t) b - lt)), nh = (float) (eqh - ((int32_t) b - gt));
    return sum + inv * (nl * L + nh * H);
}

/* A value for the exact tests: ties, +-0, normals, huge and tiny magnitudes. */
static float s_tricky(bn_rng_t *r, int mode)
{
    switch (mode) {
    case 0: return (float) bn_rng_below(r, 5) - 2.0f;
    case 1: return bn_rng_below(r, 2) ? 0.0f : -0.0f;
    case 2: return (float) bn_rng_normal(r);
    default: {
        float v = (float) bn_rng_normal(r);
        uint32_t q = (uint32_t) bn_rng_below(r, 6);
        return q == 0 ? v * 1e30f : q == 1 ? v * 1e-40f : q == 2 ? -0.0f : q == 3 ? 0.0f : v;
    }
    }
}

/* Trimmed mean and median (n <= 256), bit for bit against the straightforward
 * definition, on every kernel set this CPU runs (so the sets against each
 * other too), odd and even n, b from 1 to (n - 1) / 2, a tail group. */
/* body(set) once per kernel set this CPU runs, that set selected; at least
 * one ran; the best set is selected again after. */
static void s_each_kernel_set(void (*body)(bn_kernels_t set))
{
    int tested = 0;
    for (int k = 0; k < BN_KERNELS_COUNT; k++) {
        if (!bn_kernels_supported((bn_kernels_t) k))
            continue;
        assert_int_equal(bn_kernels_select((bn_kernels_t) k), BN_OK);
        tested++;
        body((bn_kernels_t) k);
    }
    assert_true(tested >= 1);
    assert_int_equal(bn_kernels_select(bn_kernels_best()), BN_OK);
}

static void s_trimmed_median_exact(bn_kernels_t ks_)
{
    enum { D = 37, KMAX = 255 };
    static float nb[KMAX * D], self[D], prev[D], out[D], col[KMAX + 1];
    uint32_t ks[] = { 1, 2, 3, 4, 9, 10, 29, 48, 179, 255 };
    {
        bn_rng_t r;
        bn_rng_seed(&r, 33, 1);
        for (size_t t = 0; t < BN_ARRAY_LEN(ks); t++)
            for (int mode = 0; mode < 4; mode++) {
                uint32_t k = ks[t], n = k + 1;
                for (int c = 0; c < D; c++) {
                    self[c] = s_tricky(&r, (mode + c) % 4);
                    for (uint32_t j = 0; j < k; j++)
                        nb[j * D + c] = s_tricky(&r, (mode + c) % 4);
                }
                uint32_t bs[] = { 1, n / 5, n / 4, (n - 1) / 2, 0 /* median */ };
                for (size_t q = 0; q < BN_ARRAY_LEN(bs); q++) {
                    uint32_t b = q + 1 < BN_ARRAY_LEN(bs) ? bs[q] : (n - 1) / 2;
                    if (b == 0 || 2 * b >= n)
                        continue;
                    bn_rule_opts_t o;
                    s_opts(&o, q + 1 < BN_ARRAY_LEN(bs) ? RK("trimmed-mean") : RK("median"));
                    assert_int_equal(bn_rule_opts_put(&o, "trim", b), BN_OK);
                    assert_int_equal(s_run(&o, D, prev, self, k, nb, out, NULL, NULL), BN_OK);
                    for (int c = 0; c < D; c++) {
                        for (uint32_t j = 0; j < k; j++)
                            col[j] = nb[j * D + c];
                        col[k] = self[c];          /* the set order: neighbours, then self */
                        float ref = s_ref_trimmed(col, n, b);
                        if (memcmp(&ref, &out[c], sizeof ref) != 0)
                            fail_msg("%s n=%u b=%u mode %d c=%d: %a, expected %a (set %s)",
                                     q + 1 < BN_ARRAY_LEN(bs) ? "trimmed" : "median", n, b, mode,
                                     c, (double) out[c], (double) ref,
                                     bn_kernels_name(ks_));
                    }
                }
            }
    }
}

static void test_trimmed_median_exact(void **state)
{
    (void) state;
    s_each_kernel_set(s_trimmed_median_exact);
}

/* The selection's search (b > 24) on values that slow interpolation down or
 * end it on ties, bit for bit against the definition on every kernel set:
 * a cluster across zero, far outliers on one side, exponentially spaced
 * values, runs of adjacent floats, a value repeated at the cut-offs. */
static float s_hard(bn_rng_t *r, int mode, uint32_t j)
{
    float v = (float) bn_rng_normal(r);
    switch (mode) {
    case 0: return 1e-3f * v;                                        /* across zero */
    case 1: return j % 5 == 0 ? 1e30f * fabsf(v) : 0.05f + 1e-3f * v; /* far outliers */
    case 2: return ldexpf(1.0f, (int) bn_rng_below(r, 200) - 100);     /* 2^-100 .. 2^99 */
    case 3: return nextafterf(1.0f, 2.0f) + (float) bn_rng_below(r, 8) * 1.2e-7f; /* ulps */
    default: return j % 3 ? 0.5f : v;                                 /* ties at L / H */
    }
}

static void s_trimmed_search_hard(bn_kernels_t ks_)
{
    enum { D = 21, KMAX = 255 };
    static float nb[KMAX * D], self[D], prev[D], out[D], col[KMAX + 1];
    uint32_t ks[] = { 50, 179, 255 };
    {
        bn_rng_t r;
        bn_rng_seed(&r, 77, 2);
        for (size_t t = 0; t < BN_ARRAY_LEN(ks); t++)
            for (int mode = 0; mode < 5; mode++) {
                uint32_t k = ks[t], n = k + 1;
                for (int c = 0; c < D; c++) {
                    self[c] = s_hard(&r, mode, k);
                    for (uint32_t j = 0; j < k; j++)
                        nb[j * D + c] = s_hard(&r, mode, j);
                }
                uint32_t bs[] = { n / 5, n / 3, (n - 1) / 2 };
                for (size_t q = 0; q < BN_ARRAY_LEN(bs); q++) {
                    bn_rule_opts_t o;
                    s_opts(&o, RK("trimmed-mean"));
                    assert_int_equal(bn_rule_opts_put(&o, "trim", bs[q]), BN_OK);
                    assert_int_equal(s_run(&o, D, prev, self, k, nb, out, NULL, NULL), BN_OK);
                    for (int c = 0; c < D; c++) {
                        for (uint32_t j = 0; j < k; j++)
                            col[j] = nb[j * D + c];
                        col[k] = self[c];
                        float ref = s_ref_trimmed(col, n, bs[q]);
                        if (memcmp(&ref, &out[c], sizeof ref) != 0)
                            fail_msg("n=%u b=%u mode %d c=%d: %a, expected %a (set %s)", n, bs[q],
                                     mode, c, (double) out[c], (double) ref, bn_kernels_name(ks_));
                    }
                }
            }
    }
}

static void test_trimmed_search_hard(void **state)
{
    (void) state;
    s_each_kernel_set(s_trimmed_search_hard);
}

/* Every rule gives the same bits on every kernel set this CPU runs (the
 * rules' clones and kernels, clone.h and rules/trim_simd.h, against each
 * other), on honest-like vectors with a few outliers and a NaN. */
static void test_rules_same_on_every_kernel_set(void **state)
{
    (void) state;
    enum { D = 4099, K = 23 };
    static float nb[K * D], self[D], prev[D], ref[D], out[D];
    float wref[K + 1], w[K + 1];
    bn_rng_t r;
    bn_rng_seed(&r, 5, 8);
    for (int c = 0; c < D; c++) {
        prev[c] = 0.05f * (float) bn_rng_normal(&r);
        self[c] = prev[c] + 0.001f * (float) bn_rng_normal(&r);
        for (int j = 0; j < K; j++)
            nb[j * D + c] = self[c] + (j < 3 ? 1.0f : 0.001f) * (float) bn_rng_normal(&r);
    }
    nb[5 * D + 17] = NAN;
    for (uint32_t kind = 0; kind < bn_rule_count(); kind++) {
        if (s_needs_oracle(kind))
            continue;
        bn_rule_opts_t o;
        s_opts(&o, kind);
        assert_int_equal(bn_kernels_select(BN_KERNELS_PORTABLE), BN_OK);
        assert_int_equal(s_run(&o, D, prev, self, K, nb, ref, wref, NULL), BN_OK);
        for (int ks = 0; ks < BN_KERNELS_COUNT; ks++) {
            if (!bn_kernels_supported((bn_kernels_t) ks))
                continue;
            assert_int_equal(bn_kernels_select((bn_kernels_t) ks), BN_OK);
            assert_int_equal(s_run(&o, D, prev, self, K, nb, out, w, NULL), BN_OK);
            if (memcmp(out, ref, sizeof out) != 0 || memcmp(w, wref, sizeof w) != 0)
                fail_msg("%s differs between portable and %s", bn_rule_name(kind),
                         bn_kernels_name((bn_kernels_t) ks));
        }
    }
    assert_int_equal(bn_kernels_select(bn_kernels_best()), BN_OK);
}

/* ---- similarity ------------------------------------------------------------ */
/* x_prev = 0, Delta_ii = (1,1,-1,0): q = (1/2, 1/4, 1/4), ||Delta_ii|| = sqrt 3.
 * A = 2 Delta_ii (same signs, cos 1, clipped by 1/2), B = -Delta_ii (cos -1),
 * C = (1,0,0,0): p = (1/4, 3/4, 0), cos = 1/sqrt 3,
 * KL(p_C||q) = 1/4 ln(1/2) + 3/4 ln 3, KL(p_B||q) = 1/4 ln(1/2) + 1/2 ln 2. */
static const float s_sim_self[4] = { 1, 1, -1, 0 };
static const float s_sim_nb[3 * 4] = { 2, 2, -2, 0,   -1, -1, 1, 0,   1, 0, 0, 0 };

static void test_similarity_weights(void **state)
{
    (void) state;
    float prev[4] = { 0 }, out[4], w[4];
    bn_rule_opts_t o;
    s_opts(&o, RK("similarity"));
    bn_rule_stats_t st;
    assert_int_equal(s_run(&o, 4, prev, s_sim_self, 3, s_sim_nb, out, w, &st), BN_OK);
    double klc = 0.25 * log(0.5) + 0.75 * log(3.0);
    double wc = exp(-5.0 * klc) * (1.0 / sqrt(3.0));
    double W = 1.0 + 1.0 + wc;                   /* self, A, C; B has cos < 0 */
    assert_float_equal(w[0], 1.0 / W, 1e-4);
    assert_float_equal(w[1], 0.0, 0);
    assert_float_equal(w[2], wc / W, 1e-4);
    assert_float_equal(w[3], 1.0 / W, 1e-4);
    /* x = (Delta_ii + A/2 + wc * C) / W */
    assert_float_equal(out[0], (2.0 + wc) / W, 1e-4);
    assert_float_equal(out[1], 2.0 / W, 1e-4);
    assert_float_equal(out[2], -2.0 / W, 1e-4);
    assert_float_equal(out[3], 0.0, 1e-6);
    assert_int_equal(st.degenerate, 0);

    /* metric 1 only: B counts now (its norm equals ||Delta_ii||, no clip) */
    s_opts(&o, RK("similarity-kl"));
    assert_int_equal(s_run(&o, 4, prev, s_sim_self, 3, s_sim_nb, out, w, &st), BN_OK);
    double klb = 0.25 * log(0.5) + 0.5 * log(2.0);
    double wb1 = exp(-5.0 * klb), wc1 = exp(-5.0 * klc);
    double W1 = 2.0 + wb1 + wc1;
    assert_float_equal(w[1], wb1 / W1, 1e-4);
    assert_float_equal(w[2], wc1 / W1, 1e-4);
    assert_float_equal(out[0], (2.0 - wb1 + wc1) / W1, 1e-4);
    assert_float_equal(out[1], (2.0 - wb1) / W1, 1e-4);

    /* metric 2 only: weights 1, 0, 1/sqrt3, 1 */
    s_opts(&o, RK("similarity-cos"));
    assert_int_equal(s_run(&o, 4, prev, s_sim_self, 3, s_sim_nb, out, w, &st), BN_OK);
    double c2 = 1.0 / sqrt(3.0), W2 = 2.0 + c2;
    assert_float_equal(w[2], c2 / W2, 1e-4);
    assert_float_equal(out[0], (2.0 + c2) / W2, 1e-4);
    assert_float_equal(out[1], 2.0 / W2, 1e-4);
}

static void test_similarity_kl_single_sign(void **state)
{
    (void) state;
    double p[3] = { 1, 0, 0 }, q[3] = { 0.5, 0, 0.5 };
    assert_float_equal(bn_rules_sign_kl(p, q), log(2.0), 1e-4);
    assert_float_equal(bn_rules_sign_kl(q, q), 0.0, 1e-12);
    /* q has an empty bin where p has mass: large but finite (epsilon) */
    double kl = bn_rules_sign_kl(q, p);
    assert_true(isfinite(kl));
    assert_float_equal(kl, 0.5 * log(0.5) + 0.5 * log(0.5 / BN_SIM_EPS), 1e-3);

    /* through the rule: every update strictly positive, bins must not shift */
    float prev[3] = { 0 }, self[3] = { 1, 2, 3 };
    float nb[2 * 3] = { 3, 2, 1,   1, -1, 1 };
    float out[3], w[3];
    bn_rule_opts_t o;
    s_opts(&o, RK("similarity-kl"));
    assert_int_equal(s_run(&o, 3, prev, self, 2, nb, out, w, NULL), BN_OK);
    /* neighbour 0 has the same single-sign histogram: same weight as self */
    assert_float_equal(w[0], w[2], 1e-6);
    double kl1 = (2.0 / 3.0) * log((2.0 / 3.0) / 1.0) + (1.0 / 3.0) * log((1.0 / 3.0) / BN_SIM_EPS);
    assert_true(w[1] > 0.0f);
    assert_float_equal(log((double) w[1] / (double) w[2]), -5.0 * kl1, 1e-3);
}

static void test_similarity_degenerate(void **state)
{
    (void) state;
    /* Delta_ii = 0: the node keeps x_self, weight 1 on self, counted */
    float prev[4] = { 1, 2, 3, 4 };
    float nb[2 * 4] = { 5, 5, 5, 5,   -3, 0, 1, 2 };
    float out[4], w[3];
    bn_rule_opts_t o;
    bn_rule_stats_t st;
    bn_rule_kind_t kinds[3] = { RK("similarity"), RK("similarity-kl"), RK("similarity-cos") };
    for (int i = 0; i < 3; i++) {
        s_opts(&o, kinds[i]);
        assert_int_equal(s_run(&o, 4, prev, prev, 2, nb, out, w, &st), BN_OK);
        assert_memory_equal(out, prev, sizeof prev);
        assert_int_equal(st.degenerate, 1);
        assert_float_equal(w[0], 0.0, 0);
        assert_float_equal(w[2], 1.0, 0);
    }
    /* a neighbour whose cross-update is exactly zero has cosine 0 */
    float p0[2] = { 0, 0 }, s0[2] = { 1, 1 }, n0[2 * 2] = { 0, 0,  1, 1 };
    float o0[2], w0[3];
    s_opts(&o, RK("similarity"));
    assert_int_equal(s_run(&o, 2, p0, s0, 2, n0, o0, w0, &st), BN_OK);
    assert_float_equal(w0[0], 0.0, 0);
    assert_float_equal(w0[1], 0.5, 1e-6);
    assert_float_equal(o0[0], 1.0, 1e-6);
    assert_int_equal(st.degenerate, 0);
}

/* ---- krum, multi-krum ------------------------------------------------------ */
static void test_krum(void **state)
{
    (void) state;
    /* 1-D values {1, 2, 10, 11} and self 0; b = 1, so 2 nearest count.
     * scores: 1 -> 1+1 = 2, 2 -> 1+4 = 5, 10 -> 1+64 = 65, 11 -> 1+81 = 82, 0 -> 1+4 = 5 */
    float prev[1] = { 0 }, self[1] = { 0 }, nb[4] = { 1, 2, 10, 11 }, out[1], w[5];
    bn_rule_opts_t o;
    s_opts(&o, RK("krum"));
    assert_int_equal(bn_rule_opts_put(&o, "trim", 1), BN_OK);
    assert_int_equal(s_run(&o, 1, prev, self, 4, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 1.0, 0);
    assert_float_equal(w[0], 1.0, 0);
    assert_float_equal(w[4], 0.0, 0);
    /* multi-krum, m = n - b = 4: average of 1, 2, 0, 10 */
    s_opts(&o, RK("multi-krum"));
    assert_int_equal(bn_rule_opts_put(&o, "trim", 1), BN_OK);
    assert_int_equal(s_run(&o, 1, prev, self, 4, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 13.0 / 4.0, TOL);
    assert_float_equal(w[3], 0.0, 0);
    assert_float_equal(w[2], 0.25, TOL);
    assert_int_equal(bn_rule_opts_put(&o, "krum-m", 3), BN_OK);                                     /* 1, 2, 0 */
    assert_int_equal(s_run(&o, 1, prev, self, 4, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 1.0, TOL);
    assert_float_equal(w[2], 0.0, 0);
    assert_float_equal(w[4], 1.0 / 3.0, TOL);
}

/* ---- tv-norm ---------------------------------------------------------------- */
static void test_tv_norm(void **state)
{
    (void) state;
    float prev[2] = { 0 }, self[2] = { 1, 1 };
    float nb[3 * 2] = { 0, 2,   2, 2,   1, 0 };
    float out[2], w[4];
    bn_rule_opts_t o;
    s_opts(&o, RK("tv-norm"));
    o.lr = 0.1f;
    assert_int_equal(bn_rule_opts_put(&o, "lambda", 0.5f), BN_OK);
    assert_int_equal(s_run(&o, 2, prev, self, 3, nb, out, w, NULL), BN_OK);
    /* coord 0: signs +1, -1, 0 -> 0;  coord 1: -1, -1, +1 -> -1 */
    assert_float_equal(out[0], 1.0, TOL);
    assert_float_equal(out[1], 1.0 + 0.05, TOL);
    assert_float_equal(w[0], 0.25, TOL);
}

/* ---- clipped gossip ----------------------------------------------------------- */
static void test_clipped_gossip(void **state)
{
    (void) state;
    float prev[2] = { 0 }, self[2] = { 0, 0 };
    float nb[2 * 2] = { 3, 4,   0.3f, 0.4f };       /* norms 5 and 0.5 */
    float out[2], w[3];
    bn_rule_opts_t o;
    s_opts(&o, RK("clipped-gossip"));
    assert_int_equal(bn_rule_opts_put(&o, "clip-tau", 1.0f), BN_OK);
    assert_int_equal(s_run(&o, 2, prev, self, 2, nb, out, w, NULL), BN_OK);
    /* (1/3) * ((3,4)/5 + (0.3,0.4)) = (0.3, 0.4) */
    assert_float_equal(out[0], 0.3, TOL);
    assert_float_equal(out[1], 0.4, TOL);
    assert_float_equal(w[0], 1.0 / 15.0, TOL);
    assert_float_equal(w[1], 1.0 / 3.0, TOL);
    assert_float_equal(w[2], 1.0 - 1.0 / 15.0 - 1.0 / 3.0, TOL);
}

/* ---- brsgd ---------------------------------------------------------------------- */
static void test_brsgd_selection(void **state)
{
    (void) state;
    /* per coordinate only the (10,10) vector is above the mean: it scores -2,
     * the others 0.  Medians (1, 1.1); l1: 0.1, 0.9, 17.9, 0.1, self 0.1;
     * threshold 2 * 0.1.  beta = 0.8 keeps 4 by score, (1.5,1.5) fails the l1 test. */
    float prev[2] = { 0 }, self[2] = { 1, 1 };
    float nb[4 * 2] = { 1, 1,   1.5f, 1.5f,   10, 10,   0.9f, 1.1f };
    float out[2], w[5];
    bn_rule_opts_t o;
    s_opts(&o, RK("brsgd"));
    assert_int_equal(bn_rule_opts_put(&o, "beta", 0.8f), BN_OK);
    assert_int_equal(s_run(&o, 2, prev, self, 4, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], (1.0 + 1.0 + 0.9) / 3.0, TOL);
    assert_float_equal(out[1], (1.0 + 1.0 + 1.1) / 3.0, TOL);
    assert_float_equal(w[1], 0.0, 0);
    assert_float_equal(w[2], 0.0, 0);
    assert_float_equal(w[0], 1.0 / 3.0, TOL);
    assert_float_equal(w[3], 1.0 / 3.0, TOL);
    assert_float_equal(w[4], 1.0 / 3.0, TOL);
    /* beta = 0.4 keeps the 2 best scores, ties by smaller l1 then index */
    assert_int_equal(bn_rule_opts_put(&o, "beta", 0.4f), BN_OK);
    assert_int_equal(s_run(&o, 2, prev, self, 4, nb, out, w, NULL), BN_OK);
    assert_float_equal(w[2], 0.0, 0);
    assert_float_equal(w[1], 0.0, 0);
    assert_float_equal(w[0] + w[3] + w[4], 1.0, TOL);
}

/* ---- oracle-based rules ------------------------------------------------------------ */
typedef struct {
    int   loss_calls;
    int   grad_calls;
} s_oracle_ctx_t;

/* loss = ||x - (1,1)||^2; gradient at any point = (-1, -1) (descent is +). */
static float s_ctx_loss(void *ctx, const float *x)
{
    ((s_oracle_ctx_t *) ctx)->loss_calls++;
    return (x[0] - 1) * (x[0] - 1) + (x[1] - 1) * (x[1] - 1);
}

static void s_ctx_grad(void *ctx, const float *x, float *g)
{
    (void) x;
    ((s_oracle_ctx_t *) ctx)->grad_calls++;
    g[0] = -1.0f;
    g[1] = -1.0f;
}

/* gradient of 1/2 ||x - (1,1)||^2, or NaN */
typedef struct { int calls, nan; } s_quad_ctx_t;
static void s_quad_grad(void *ctx, const float *x, float *g)
{
    s_quad_ctx_t *c = ctx;
    c->calls++;
    g[0] = c->nan ? NAN : x[0] - 1.0f;
    g[1] = x[1] - 1.0f;
}

static void test_mozi(void **state)
{
    (void) state;
    s_oracle_ctx_t ctx = { 0, 0 };
    bn_oracle_t oracle = { &ctx, s_ctx_loss, s_ctx_grad };
    float prev[2] = { 0 }, self[2] = { 0, 0 };
    float nb[3 * 2] = { 1, 1,   -1, -1,   100, 100 };
    const float *ptr[3] = { nb, nb + 2, nb + 4 };
    float out[2], w[4];
    bn_rule_opts_t o;
    s_opts(&o, RK("mozi"));
    assert_int_equal(bn_rule_opts_put(&o, "trim", 1), BN_OK);                                 /* keep k - b = 2 nearest */
    bn_rule_t *r = bn_rule_new(&o, 2, 3);
    assert_non_null(r);
    bn_agg_input_t in = { .dim = 2, .x_prev = prev, .x_self = self, .k = 3, .x_nb = ptr,
                          .oracle = &oracle };
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    /* (100,100) fails the distance test; (-1,-1) has loss 8 > 2 */
    assert_float_equal(out[0], 0.5, TOL);
    assert_float_equal(out[1], 0.5, TOL);
    assert_float_equal(w[0], 0.5, TOL);
    assert_float_equal(w[1], 0.0, 0);
    assert_float_equal(w[2], 0.0, 0);
    assert_float_equal(w[3], 0.5, TOL);
    assert_int_equal(ctx.loss_calls, 3);     /* own + 2 pre-selected */
    in.oracle = NULL;
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_EARG);
    bn_rule_destroy(&r);
}

static void test_bygars_reputation(void **state)
{
    (void) state;
    s_oracle_ctx_t ctx = { 0, 0 };
    bn_oracle_t oracle = { &ctx, s_ctx_loss, s_ctx_grad };
    float prev[2] = { 0 }, self[2] = { 0.1f, 0.1f };
    /* id 100 descends (+ direction), id 101 ascends, id 102 descends 100x too far */
    float nb[3 * 2] = { 0.1f, 0.1f,   -0.1f, -0.1f,   10, 10 };
    const float *ptr[3] = { nb, nb + 2, nb + 4 };
    uint32_t ids[3] = { 100, 101, 102 };
    float out[2], w[4];
    bn_rule_opts_t o;
    s_opts(&o, RK("bygars++"));
    assert_int_equal(bn_rule_opts_put(&o, "bygars-lr", 0.5f), BN_OK);
    bn_rule_t *r = bn_rule_new(&o, 2, 3);
    assert_non_null(r);
    bn_agg_input_t in = { .dim = 2, .x_prev = prev, .x_self = self, .k = 3, .x_nb = ptr,
                          .nb_id = ids, .oracle = &oracle };
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    /* <-Delta, g> = 0.2 for the good one, -0.2 for the bad one; 102 is clipped
     * to ||Delta_ii|| and scores like the good one */
    assert_float_equal(bn_rules_reputation(r, 100), 0.5 * 0.2, 1e-6);
    assert_float_equal(bn_rules_reputation(r, 101), -0.5 * 0.2, 1e-6);
    assert_float_equal(bn_rules_reputation(r, 102), 0.5 * 0.2, 1e-5);
    assert_float_equal(bn_rules_reputation(r, 999), 0.0, 0);
    assert_float_equal(w[1], 0.0, 0);
    assert_float_equal(w[0], 1.0 / 3.0, 1e-5);
    assert_float_equal(out[0], 0.1, 1e-5);       /* all positive updates equal 0.1 after clip */
    assert_int_equal(ctx.grad_calls, 1);
    /* second round: q <- 0.5 q + 0.5 obs moves further in the same direction */
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    assert_float_equal(bn_rules_reputation(r, 100), 0.5 * 0.1 + 0.5 * 0.2, 1e-6);
    assert_float_equal(bn_rules_reputation(r, 101), -(0.5 * 0.1 + 0.5 * 0.2), 1e-6);
    /* the neighbour set changes: ids, not positions, carry the reputation */
    const float *ptr2[1] = { nb + 2 };
    uint32_t ids2[1] = { 101 };
    in.k = 1;
    in.x_nb = ptr2;
    in.nb_id = ids2;
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    assert_true(bn_rules_reputation(r, 101) < -0.15);
    assert_float_equal(w[0], 0.0, 0);
    assert_float_equal(w[1], 1.0, 0);
    bn_rule_destroy(&r);
}

/* reputation.c, the memory bygars and bygars++ share: 256 slots for a
 * small cap, 3/4 of them fill, then new ids are not remembered while known
 * ones still are; the node's own score is t->self; no ids: no memory. */
static void test_rep_table(void **state)
{
    (void) state;
    bn_rep_table_t t;
    assert_int_equal(bn_rep_init(&t, 4), BN_OK);
    assert_int_equal(t.cap, 256);
    for (uint32_t id = 0; id < 192; id++) {
        double *q = bn_rep_find(&t, id * 7919u, true);
        assert_non_null(q);
        assert_float_equal(*q, 0.0, 0);
        *q = id + 0.5;
    }
    assert_null(bn_rep_find(&t, 5, true));              /* 3/4 full: not remembered */
    assert_float_equal(bn_rep_get(&t, 5), 0.0, 0);
    for (uint32_t id = 0; id < 192; id++)
        assert_float_equal(bn_rep_get(&t, id * 7919u), id + 0.5, 0);
    assert_float_equal(bn_rep_reputation(&t, 7919u), 1.5, 0);
    float x[2] = { 1, 2 }, p[2] = { 0, 0 };
    const float *v[2] = { x, x };
    uint32_t orig[2] = { 0, 1 }, ids[1] = { 7919u };
    bn_agg_input_t in = { .dim = 2, .x_prev = p, .x_self = x, .k = 1, .nb_id = ids };
    bn_set_t set = { .dim = 2, .n = 2, .v = v, .x_prev = p, .x_self = x, .in = &in, .orig = orig };
    assert_ptr_equal(bn_rep_of(&t, &set, 1), &t.self);
    assert_float_equal(*bn_rep_of(&t, &set, 0), 1.5, 0);
    in.nb_id = NULL;
    assert_null(bn_rep_of(&t, &set, 0));
    double coef[2] = { 0.5, 0.25 };
    float out[2];
    bn_rep_combine(&set, coef, out);                    /* p + 0.75 (x - p) */
    assert_float_equal(out[0], 0.75, 1e-6);
    assert_float_equal(out[1], 1.5, 1e-6);
    bn_rep_free(&t);
    bn_rep_free(&t);                                    /* twice is safe */
    assert_null(bn_rep_find(&t, 1, true));
}

/* ByGARS (the paper's, Fig. 1a): on loss 1/2 ||x - (1,1)||^2 from q = 0.
 * x_prev = 0, x_self = (0.1, 0.1) (radius 0.1 sqrt 2); A = x_self (descends),
 * B = -x_self (ascends), C = 100 x_self (clipped to A).  Step 1 at x^ = 0,
 * g = (-1, -1): alpha = 0.5 / (0.1 sqrt2 * sqrt2) = 2.5, <D, g> = -0.2 for A,
 * C and self, +0.2 for B: q = (0.5, -0.5, 0.5, 0.5).  Step 2 at
 * x^ = 0.5 (0.1 + 0.1 + 0.1 + 0.1) = (0.2, 0.2), g = (-0.8, -0.8),
 * <D, g> = -0.16: q = (0.9, -0.9, 0.9, 0.9), x_out = 0.9 * 4 * 0.1 = 0.36. */
static void test_bygars_meta(void **state)
{
    (void) state;
    float prev[2] = { 0 }, self[2] = { 0.1f, 0.1f };
    float nb[3 * 2] = { 0.1f, 0.1f,   -0.1f, -0.1f,   10, 10 };
    const float *ptr[3] = { nb, nb + 2, nb + 4 };
    uint32_t ids[3] = { 100, 101, 102 };
    float out[2], w[4];
    s_quad_ctx_t ctx = { 0 };
    bn_oracle_t oracle = { &ctx, NULL, s_quad_grad };
    bn_rule_opts_t o;
    s_opts(&o, RK("bygars"));
    assert_int_equal(bn_rule_opts_put(&o, "bygars-lr", 0.5), BN_OK);
    assert_int_equal(bn_rule_opts_put(&o, "bygars-steps", 2), BN_OK);
    bn_rule_t *r = bn_rule_new(&o, 2, 3);
    assert_non_null(r);
    bn_agg_input_t in = { .dim = 2, .x_prev = prev, .x_self = self, .k = 3, .x_nb = ptr,
                          .nb_id = ids, .oracle = &oracle };
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    assert_int_equal(ctx.calls, 2);
    assert_float_equal(bn_rules_reputation(r, 100), 0.9, 1e-5);
    assert_float_equal(bn_rules_reputation(r, 101), -0.9, 1e-5);   /* flipped, as in the paper */
    assert_float_equal(bn_rules_reputation(r, 102), 0.9, 1e-4);
    assert_float_equal(out[0], 0.36, 1e-5);
    assert_float_equal(out[1], 0.36, 1e-5);
    double tot = 0.9 + 0.9 + 0.009 + 0.9;
    assert_float_equal(w[0], 0.9 / tot, 1e-4);
    assert_float_equal(w[2], 0.009 / tot, 1e-4);
    /* the scores are remembered: the next round starts from them and goes on */
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    assert_true(bn_rules_reputation(r, 100) > 0.9);
    assert_true(bn_rules_reputation(r, 101) < -0.9);
    assert_true(out[0] > 0.36 && out[0] < 1.0);
    /* no oracle: refused; a non-finite gradient: degenerate, x_self kept */
    in.oracle = NULL;
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_EARG);
    ctx.nan = 1;
    in.oracle = &oracle;
    assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
    assert_float_equal(out[0], 0.1, 0);
    assert_float_equal(w[3], 1.0, 0);
    assert_int_equal(bn_rule_stats(r)->degenerate, 1);
    bn_rule_destroy(&r);
}

/* ---- bucketing ------------------------------------------------------------------ */
static void test_bucketing(void **state)
{
    (void) state;
    enum { D = 3, K = 5 };
    float prev[D] = { 0 }, self[D] = { 1, -2, 3 };
    float nb[K * D] = { 2, 0, 1,   7, 1, 1,   -3, 4, 0,   5, 5, 5,   0.5f, 2, -1 };
    float mean[D] = { 0 }, out[D], out2[D], w[K + 1];
    for (int c = 0; c < D; c++) {
        mean[c] = self[c];
        for (int j = 0; j < K; j++)
            mean[c] += nb[j * D + c];
        mean[c] /= (float) (K + 1);
    }
    /* n = 6, s = 2: three buckets; a mean of the bucket means is the mean */
    bn_rule_opts_t o;
    s_opts(&o, RK("trimmed-mean"));
    assert_int_equal(bn_rule_opts_put(&o, "trim", 0), BN_OK);
    assert_int_equal(bn_rule_opts_put(&o, "bucketing", 2), BN_OK);
    o.seed = 5;
    assert_int_equal(s_run(&o, D, prev, self, K, nb, out, w, NULL), BN_OK);
    for (int c = 0; c < D; c++)
        assert_float_equal(out[c], mean[c], 1e-5);
    for (int j = 0; j <= K; j++)
        assert_float_equal(w[j], 1.0 / 6.0, 1e-6);
    /* same seed, same buckets */
    assert_int_equal(s_run(&o, D, prev, self, K, nb, out2, NULL, NULL), BN_OK);
    assert_memory_equal(out, out2, sizeof out);
    /* krum on 2 buckets of 3: the chosen bucket's three members get 1/3 each */
    s_opts(&o, RK("krum"));
    assert_int_equal(bn_rule_opts_put(&o, "bucketing", 3), BN_OK);
    assert_int_equal(s_run(&o, D, prev, self, K, nb, out, w, NULL), BN_OK);
    int third = 0;
    for (int j = 0; j <= K; j++) {
        third += fabsf(w[j] - 1.0f / 3.0f) < 1e-6f;
        assert_true(w[j] == 0.0f || fabsf(w[j] - 1.0f / 3.0f) < 1e-6f);
    }
    assert_int_equal(third, 3);
    /* the output is the mean of the three members with weight 1/3 */
    for (int c = 0; c < D; c++) {
        double m = 0;
        for (int j = 0; j < K; j++)
            m += w[j] * nb[j * D + c];
        m += w[K] * self[c];
        assert_float_equal(out[c], m, 1e-5);
    }
}

/* ---- non-finite pre-filter ---------------------------------------------------- */
static void test_nonfinite_excluded(void **state)
{
    (void) state;
    enum { D = 40 };
    float prev[D], self[D], nb[4 * D], out[D], w[5];
    for (int c = 0; c < D; c++) {
        prev[c] = 0.0f;
        self[c] = 1.0f + 0.01f * (float) c;
        nb[0 * D + c] = 1.1f + 0.01f * (float) c;
        nb[1 * D + c] = 1.0f;
        nb[2 * D + c] = 0.9f + 0.01f * (float) c;
        nb[3 * D + c] = 1.0f;
    }
    nb[1 * D + 17] = NAN;
    nb[3 * D + 39] = INFINITY;
    for (bn_rule_kind_t kind = 0; kind < bn_rule_count(); kind++) {
        if (s_needs_oracle(kind))
            continue;                    /* need an oracle: tested below */
        bn_rule_opts_t o;
        s_opts(&o, (bn_rule_kind_t) kind);
        bn_rule_stats_t st;
        assert_int_equal(s_run(&o, D, prev, self, 4, nb, out, w, &st), BN_OK);
        assert_int_equal(st.nonfinite, 2);
        assert_float_equal(w[1], 0.0, 0);
        assert_float_equal(w[3], 0.0, 0);
        for (int c = 0; c < D; c++)
            assert_true(isfinite(out[c]));
    }
    /* mean of the three finite vectors */
    bn_rule_opts_t o;
    s_opts(&o, BN_RULE_MEAN);
    assert_int_equal(s_run(&o, D, prev, self, 4, nb, out, w, NULL), BN_OK);
    assert_float_equal(out[0], 1.0, 1e-6);
    assert_float_equal(w[0], 1.0 / 3.0, 1e-6);

    /* a diverged x_self is replaced by x_prev and counted as degenerate */
    float bad_self[D];
    memcpy(bad_self, self, sizeof self);
    bad_self[3] = NAN;
    bn_rule_stats_t st;
    assert_int_equal(s_run(&o, D, prev, bad_self, 4, nb, out, w, &st), BN_OK);
    assert_int_equal(st.degenerate, 1);
    assert_float_equal(out[0], (0.0 + 1.1 + 0.9) / 3.0, 1e-6);
    /* a non-finite x_prev: the cross-update rules keep x_self; nobody else is blamed */
    float bad_prev[D];
    memcpy(bad_prev, prev, sizeof prev);
    bad_prev[5] = INFINITY;
    s_opts(&o, RK("similarity"));
    assert_int_equal(s_run(&o, D, bad_prev, self, 4, nb, out, w, &st), BN_OK);
    assert_int_equal(st.degenerate, 2);          /* substitution + Delta_ii = 0 */
    assert_int_equal(st.nonfinite, 2);
    assert_memory_equal(out, self, sizeof self);
    /* both own vectors broken: an error, x_out untouched is allowed */
    assert_int_equal(s_run(&o, D, bad_prev, bad_self, 4, nb, out, w, &st), BN_EARG);
}

/* finite but enormous values (x_j - x_prev overflows float) stay finite */
static void test_huge_finite(void **state)
{
    (void) state;
    enum { D = 40 };
    float prev[D], self[D], nb[3 * D], out[D], w[4];
    for (int c = 0; c < D; c++) {
        prev[c] = -1e38f;
        self[c] = -0.999e38f;
        nb[0 * D + c] = -0.998e38f;
        nb[1 * D + c] = 3e38f;                  /* 3e38 - (-1e38) > FLT_MAX */
        nb[2 * D + c] = -0.9985e38f;
    }
    for (bn_rule_kind_t kind = 0; kind < bn_rule_count(); kind++) {
        if (s_needs_oracle(kind))
            continue;
        bn_rule_opts_t o;
        s_opts(&o, (bn_rule_kind_t) kind);
        bn_rule_stats_t st;
        assert_int_equal(s_run(&o, D, prev, self, 3, nb, out, w, &st), BN_OK);
        assert_int_equal(st.nonfinite, 0);
        for (int c = 0; c < D; c++)
            assert_true(isfinite(out[c]));
        if (kind == RK("similarity")) {
            /* the huge vector points the same way as Delta_ii but is clipped:
             * the result stays within ||Delta_ii|| of x_prev */
            for (int c = 0; c < D; c++)
                assert_true(out[c] <= -0.998e38f && out[c] >= -1e38f);
        }
    }
}

/* ---- adaptive attacks: the victim's own model plus p ----------------------------
 * Honest models x_j = m + e_j (e_j iid, the honest spread), the victim
 * x_self = m + e_h after its own step D (x_prev = x_self - D).  s = median
 * distance from x_self to its honest neighbours.  echo sends x_self, drift
 * x_self + s u (u = -m / ||m||, one direction for every victim), dissensus
 * x_self + s (x_self - honest mean) / ||...||. */
enum { AD_D = 4000, AD_H = 9, AD_B = 3, AD_K = AD_H + AD_B };
static double s_rel_dist(const float *a, const float *b, size_t d);
typedef struct {
    float prev[AD_D], self[AD_D], nb[AD_K * AD_D], hmean[AD_D], m[AD_D];
    double s;
} s_adaptive_t;

static void s_adaptive_setup(s_adaptive_t *a, uint64_t seed)
{
    bn_rng_t r;
    bn_rng_seed(&r, seed, 3);
    for (int c = 0; c < AD_D; c++) {
        a->m[c] = (float) bn_rng_normal(&r);
        a->self[c] = a->m[c] + 0.01f * (float) bn_rng_normal(&r);
        a->prev[c] = a->self[c] - 0.01f * (float) bn_rng_normal(&r);
        a->hmean[c] = 0.0f;
    }
    double d[AD_H];
    for (int j = 0; j < AD_H; j++) {
        double dd = 0.0;
        for (int c = 0; c < AD_D; c++) {
            float x = a->m[c] + 0.01f * (float) bn_rng_normal(&r);
            a->nb[j * AD_D + c] = x;
            a->hmean[c] += x / AD_H;
            dd += ((double) x - a->self[c]) * ((double) x - a->self[c]);
        }
        d[j] = sqrt(dd);
    }
    for (int i = 1; i < AD_H; i++)          /* median distance (insertion sort) */
        for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
            double t = d[j];
            d[j] = d[j - 1];
            d[j - 1] = t;
        }
    a->s = d[AD_H / 2];
}

/* kind 0 echo, 1 drift, 2 dissensus: the AD_B attacking rows. */
static void s_adaptive_attack(s_adaptive_t *a, int kind)
{
    double mn = 0.0, dn = 0.0;
    for (int c = 0; c < AD_D; c++) {
        mn += (double) a->m[c] * a->m[c];
        dn += ((double) a->self[c] - a->hmean[c]) * ((double) a->self[c] - a->hmean[c]);
    }
    mn = sqrt(mn);
    dn = sqrt(dn);
    for (int j = AD_H; j < AD_K; j++)
        for (int c = 0; c < AD_D; c++) {
            double p = kind == 0 ? 0.0
                     : kind == 1 ? -a->s * a->m[c] / mn
                     : a->s * ((double) a->self[c] - a->hmean[c]) / dn;
            a->nb[j * AD_D + c] = (float) (a->self[c] + p);
        }
}

static double s_byz_weight(const float *w)
{
    double t = 0.0;
    for (int j = AD_H; j < AD_K; j++)
        t += w[j];
    return t;
}

static void test_robust_similarity_adaptive(void **state)
{
    (void) state;
    static s_adaptive_t a;
    static float out[AD_D];
    const char *names[3] = { "echo", "drift", "dissensus" };
    for (int kind = 0; kind < 3; kind++) {
        s_adaptive_setup(&a, 21 + (uint64_t) kind);
        s_adaptive_attack(&a, kind);
        float w[AD_K + 1];
        bn_rule_opts_t o;
        s_opts(&o, RK("similarity"));
        assert_int_equal(s_run(&o, AD_D, a.prev, a.self, AD_K, a.nb, out, w, NULL), BN_OK);
        double ws = s_byz_weight(w);
        s_opts(&o, RK("robust-similarity"));
        assert_int_equal(s_run(&o, AD_D, a.prev, a.self, AD_K, a.nb, out, w, NULL), BN_OK);
        double wr = s_byz_weight(w);
        double before = s_rel_dist(a.self, a.hmean, AD_D), after = s_rel_dist(out, a.hmean, AD_D);
        print_message("%-9s Byzantine weight: similarity %.3f, robust-similarity %.3f; "
                      "distance to the honest mean %.2e -> %.2e\n", names[kind], ws, wr, before, after);
        assert_true(ws > 0.15);             /* the paper's rule yields */
        assert_true(wr < 0.02);             /* the hardened one does not */
        assert_true(after < 0.5 * before);  /* and still mixes with the honest */
        double hw = 0.0;
        for (int j = 0; j < AD_H; j++)
            hw += w[j];
        assert_true(hw > 0.3);
    }
}

/* A neighbour caught drifting stays down for a while after it behaves. */
static void test_robust_similarity_memory(void **state)
{
    (void) state;
    static s_adaptive_t a;
    static float out[AD_D];
    static const float *ptr[AD_K];
    uint32_t ids[AD_K];
    for (int j = 0; j < AD_K; j++)
        ids[j] = 200 + (uint32_t) j;
    bn_rule_opts_t o;
    s_opts(&o, RK("robust-similarity"));
    bn_rule_t *r = bn_rule_new(&o, AD_D, AD_K);
    assert_non_null(r);
    float w[AD_K + 1];
    for (int round = 0; round < 30; round++) {
        s_adaptive_setup(&a, 40 + (uint64_t) round);
        if (round < 5)
            s_adaptive_attack(&a, 1);
        else                                /* the attackers now send honest-like models */
            for (int j = AD_H; j < AD_K; j++)
                memcpy(a.nb + j * AD_D, a.nb + (j - AD_H) * AD_D, sizeof(float) * AD_D);
        for (int j = 0; j < AD_K; j++)
            ptr[j] = a.nb + j * AD_D;
        bn_agg_input_t in = { .dim = AD_D, .x_prev = a.prev, .x_self = a.self, .k = AD_K,
                              .x_nb = ptr, .nb_id = ids };
        assert_int_equal(bn_rule_aggregate(r, &in, out, w), BN_OK);
        /* an attacker sending the same model as honest neighbour j - AD_H */
        if (round == 5)
            assert_true(w[AD_H] < 0.5 * w[0]);
        if (round == 29)
            assert_float_equal(w[AD_H], w[0], 1e-3 + 0.1 * w[0]);
    }
    bn_rule_destroy(&r);
}

/* Degenerate inputs: no neighbour, no own progress. */
static void test_robust_similarity_degenerate(void **state)
{
    (void) state;
    float prev[3] = { 1, 2, 3 }, self[3] = { 1, 2, 3 }, nb[2 * 3] = { 0, 0, 0,  5, 5, 5 };
    float out[3], w[3];
    bn_rule_opts_t o;
    bn_rule_stats_t st;
    s_opts(&o, RK("robust-similarity"));
    assert_int_equal(s_run(&o, 3, prev, self, 2, nb, out, w, &st), BN_OK);
    assert_int_equal(st.degenerate, 1);            /* Delta_ii = 0 */
    assert_float_equal(out[2], 3.0, 0);
    assert_float_equal(w[2], 1.0, 0);
    self[0] = 1.5f;
    assert_int_equal(s_run(&o, 3, prev, self, 0, nb, out, w, &st), BN_OK);
    assert_float_equal(out[0], 1.5, 0);            /* alone: keeps its own step */
    /* bands must be ordered */
    assert_int_equal(bn_rule_opts_put(&o, "rs-z-full", 2.0), BN_OK);
    assert_int_equal(bn_rule_opts_put(&o, "rs-z-zero", 1.5), BN_OK);
    assert_null(bn_rule_new(&o, 3, 2));
}

/* ---- streaming: begin / observe give bit-identical results ----------------------- */
static void test_streaming_bit_identical(void **state)
{
    (void) state;
    enum { D = 9001, K = 7 };
    static float prev[D], self[D], nb[K * D], out_a[D], out_b[D];
    static const float *ptr[K];
    float wa[K + 1], wb[K + 1];
    const char *rules[] = { "similarity", "similarity-kl", "similarity-cos", "mean",
                            "robust-similarity", "trimmed-mean", "median" };
    bn_rng_t r;
    bn_rng_seed(&r, 5, 9);
    for (size_t ri = 0; ri < BN_ARRAY_LEN(rules); ri++) {
        bn_rule_opts_t o;
        s_opts(&o, RK(rules[ri]));
        bn_rule_t *a = bn_rule_new(&o, D, K), *b = bn_rule_new(&o, D, K);
        assert_non_null(a);
        assert_non_null(b);
        for (int round = 0; round < 4; round++) {
            for (int c = 0; c < D; c++) {
                prev[c] = (float) bn_rng_normal(&r);
                self[c] = prev[c] + 0.1f * (float) bn_rng_normal(&r);
            }
            for (int j = 0; j < K; j++) {
                for (int c = 0; c < D; c++)
                    nb[j * D + c] = self[c] + 0.2f * (float) bn_rng_normal(&r);
                ptr[j] = nb + j * D;
            }
            nb[2 * D + 17] = NAN;                    /* non-finite */
            for (int c = 0; c < D; c++)              /* |Delta| > FLT_MAX in places */
                nb[3 * D + c] = (c % 3 ? 3e38f : -3e38f);
            memcpy(nb + 4 * D, self, sizeof self);   /* an echo */
            bn_agg_input_t in = { .dim = D, .x_prev = prev, .x_self = self, .k = K, .x_nb = ptr };
            assert_int_equal(bn_rule_aggregate(a, &in, out_a, wa), BN_OK);
            /* b: begin, then observe all but slot 5 (round 1: a wrong pointer
             * in slot 6; round 2: no begin at all; round 3: begin with
             * another x_self pointer, so nothing may be reused) */
            static float other[D];
            memcpy(other, self, sizeof self);
            if (round != 2)
                assert_int_equal(bn_rule_begin(b, prev, round == 3 ? other : self), BN_OK);
            for (int j = 0; j < K; j++)
                if (j != 5)
                    assert_int_equal(bn_rule_observe(b, (uint32_t) j,
                                                     round == 1 && j == 6 ? ptr[0] : ptr[j]), BN_OK);
            assert_int_equal(bn_rule_aggregate(b, &in, out_b, wb), BN_OK);
            assert_memory_equal(out_a, out_b, sizeof out_a);
            assert_memory_equal(wa, wb, sizeof wa);
        }
        bn_rule_stats_t sa = *bn_rule_stats(a), sb = *bn_rule_stats(b);
        assert_int_equal(sa.streamed, 0);
        /* used: round 0 the 6 observed (the NaN one too: its pass flagged it;
         * trimmed mean and median: only the 5 in the set), round 1 those but
         * the wrong pointer; rounds 2 and 3 none */
        bool keyed = strcmp(rules[ri], "trimmed-mean") == 0 || strcmp(rules[ri], "median") == 0;
        assert_int_equal(sb.streamed, strncmp(rules[ri], "similarity", 10) == 0 ? 6 + 5
                                      : keyed ? 5 + 4 : 0);
        sb.streamed = 0;
        assert_memory_equal(&sa, &sb, sizeof sa);
        if (strncmp(rules[ri], "similarity", 10) == 0) {
            /* the observed work is really reused: a vector changed after it
             * was observed (a breach of the contract) is scored as observed */
            bn_agg_input_t in = { .dim = D, .x_prev = prev, .x_self = self, .k = K, .x_nb = ptr };
            assert_int_equal(bn_rule_begin(b, prev, self), BN_OK);
            assert_int_equal(bn_rule_observe(b, 0, ptr[0]), BN_OK);
            for (int c = 0; c < D; c++)
                nb[c] = -nb[c];
            assert_int_equal(bn_rule_aggregate(a, &in, out_a, wa), BN_OK);
            assert_int_equal(bn_rule_aggregate(b, &in, out_b, wb), BN_OK);
            assert_true(wa[0] != wb[0]);
        }
        assert_int_equal(bn_rule_observe(b, K, ptr[0]), BN_EARG);
        assert_int_equal(bn_rule_observe(b, 0, NULL), BN_EARG);
        assert_int_equal(bn_rule_begin(NULL, prev, self), BN_EARG);
        bn_rule_destroy(&a);
        bn_rule_destroy(&b);
    }
}

/* The similarity rules' formula in double, straight from the definition
 * (similarity.c's banner), for comparison with the rule's exact fixed-point
 * sum: out = x_prev + sum_j w_j clip(Delta_j) / sum_j w_j over the k
 * neighbours and the node itself. */
static void s_similarity_reference(const char *rule, size_t dim, const float *prev,
                                   const float *self, uint32_t k, const float *const *nb,
                                   float *out)
{
    double *acc = calloc(dim, sizeof *acc);
    assert_non_null(acc);
    double rr = 0.0, q[3] = { 0, 0, 0 }, wsum = 0.0;
    for (size_t c = 0; c < dim; c++) {
        double d = (double) self[c] - prev[c];
        rr += d * d;
        q[d > 0 ? 0 : d < 0 ? 2 : 1] += 1.0 / (double) dim;
    }
    rr = sqrt(rr);
    for (uint32_t j = 0; j <= k; j++) {
        const float *x = j < k ? nb[j] : self;
        double dot = 0.0, nrm = 0.0, p[3] = { 0, 0, 0 };
        for (size_t c = 0; c < dim; c++) {
            double d = (double) x[c] - prev[c], r = (double) self[c] - prev[c];
            dot += d * r;
            nrm += d * d;
            p[d > 0 ? 0 : d < 0 ? 2 : 1] += 1.0 / (double) dim;
        }
        double nj = sqrt(nrm), cs = nj > 0 && rr > 0 ? dot / (nj * rr) : 0.0;
        cs = cs > 1.0 ? 1.0 : cs < 0.0 ? 0.0 : cs;
        double w1 = exp(-5.0 * bn_rules_sign_kl(p, q));
        double w = strcmp(rule, "similarity-kl") == 0 ? w1
                   : strcmp(rule, "similarity-cos") == 0 ? cs : w1 * cs;
        double a = w * (nj > rr ? rr / nj : 1.0);
        wsum += w;
        for (size_t c = 0; c < dim; c++)
            acc[c] += a * ((double) x[c] - prev[c]);
    }
    for (size_t c = 0; c < dim; c++)
        out[c] = (float) (prev[c] + acc[c] / wsum);
    free(acc);
}

/* Streaming as the node does it: the models arrive in any order and are
 * observed under their position in the neighbour list; the ones that never
 * came are left out of x_nb, so later slots are above their x_nb index.  The
 * result is bit-identical to no streaming, and every observed model's pass
 * is used (stats.streamed). */
static void test_streaming_node_slots(void **state)
{
    (void) state;
    enum { D = 5003, DEG = 11 };
    static float prev[D], self[D], nb[DEG * D], out_a[D], out_b[D];
    const float *x_nb[DEG];
    float wa[DEG + 1], wb[DEG + 1];
    bn_rng_t r;
    bn_rng_seed(&r, 6, 2);
    const char *rules[] = { "similarity", "similarity-kl", "similarity-cos", "trimmed-mean",
                            "median" };
    for (size_t ri = 0; ri < BN_ARRAY_LEN(rules); ri++) {
        bn_rule_opts_t o;
        s_opts(&o, RK(rules[ri]));
        bn_rule_t *a = bn_rule_new(&o, D, DEG), *b = bn_rule_new(&o, D, DEG);
        bn_rule_t *c = bn_rule_new(&o, D, DEG);
        bool sim = strncmp(rules[ri], "similarity", 10) == 0;   /* they consume on observe */
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);
        assert_true(bn_rule_streams(c) == sim);
        uint64_t observed = 0;
        for (int round = 0; round < 5; round++) {
            for (int c = 0; c < D; c++) {
                prev[c] = (float) bn_rng_normal(&r);
                self[c] = prev[c] + 0.1f * (float) bn_rng_normal(&r);
                for (int j = 0; j < DEG; j++)
                    nb[j * D + c] = self[c] + (j == 3 ? 2.0f : 0.1f) * (float) bn_rng_normal(&r);
            }
            bool came[DEG];
            uint32_t order[DEG], k = 0;
            for (uint32_t i = 0; i < DEG; i++) {
                came[i] = bn_rng_below(&r, 4) != 0;
                order[i] = i;
            }
            bn_rng_shuffle_u32(&r, order, DEG);
            assert_int_equal(bn_rule_begin(b, prev, self), BN_OK);
            for (uint32_t t = 0; t < DEG; t++)           /* arrival order */
                if (came[order[t]]) {
                    assert_int_equal(bn_rule_observe(b, order[t], nb + order[t] * D), BN_OK);
                    observed++;
                }
            for (uint32_t i = 0; i < DEG; i++)           /* x_nb in neighbour order */
                if (came[i])
                    x_nb[k++] = nb + i * D;
            bn_agg_input_t in = { .dim = D, .x_prev = prev, .x_self = self, .k = k, .x_nb = x_nb };
            assert_int_equal(bn_rule_aggregate(a, &in, out_a, wa), BN_OK);
            assert_int_equal(bn_rule_aggregate(b, &in, out_b, wb), BN_OK);
            assert_memory_equal(out_a, out_b, sizeof out_a);
            assert_memory_equal(wa, wb, (k + 1) * sizeof *wa);
            if (!sim)
                continue;
            /* c: as the node with a rule that streams: another arrival
             * order, each payload released (NULL) once observed, except one
             * model that came but was not observed (slot UINT32_MAX) */
            static float out_c[D];
            float wc[DEG + 1];
            const float *x_rel[DEG];
            uint32_t slots[DEG], kk = 0, skip = DEG;
            bn_rng_shuffle_u32(&r, order, DEG);
            for (uint32_t t = 0; t < DEG && skip == DEG; t++)
                if (came[order[t]] && round % 2)
                    skip = order[t];
            assert_int_equal(bn_rule_begin(c, prev, self), BN_OK);
            for (uint32_t t = 0; t < DEG; t++)
                if (came[order[t]] && order[t] != skip)
                    assert_int_equal(bn_rule_observe(c, order[t], nb + order[t] * D), BN_OK);
            for (uint32_t i = 0; i < DEG; i++)
                if (came[i]) {
                    x_rel[kk] = i == skip ? nb + i * D : NULL;
                    slots[kk++] = i == skip ? UINT32_MAX : i;
                }
            bn_agg_input_t inc = { .dim = D, .x_prev = prev, .x_self = self, .k = k, .x_nb = x_rel,
                                   .slot = slots };
            assert_int_equal(bn_rule_aggregate(c, &inc, out_c, wc), BN_OK);
            assert_memory_equal(out_a, out_c, sizeof out_a);
            assert_memory_equal(wa, wc, (k + 1) * sizeof *wa);
            /* and the formula itself, in double: x_prev + sum_j w_j clip_j Delta_j */
            s_similarity_reference(rules[ri], D, prev, self, k, x_nb, out_c);
            for (int t = 0; t < D; t++)
                assert_float_equal(out_a[t], out_c[t], 1e-6 * (1.0 + fabs(out_c[t])));
        }
        /* a released vector whose slot was not observed cannot be used */
        if (sim) {
            const float *x_bad[1] = { NULL };
            uint32_t sl[1] = { 0 };
            bn_agg_input_t inb = { .dim = D, .x_prev = prev, .x_self = self, .k = 1,
                                   .x_nb = x_bad, .slot = sl };
            uint64_t nf = bn_rule_stats(c)->nonfinite;
            assert_int_equal(bn_rule_begin(c, prev, self), BN_OK);
            assert_int_equal(bn_rule_aggregate(c, &inb, out_b, wb), BN_OK);
            assert_int_equal(bn_rule_stats(c)->nonfinite, nf + 1);   /* dropped */
        }
        bn_rule_destroy(&c);
        assert_true(observed > 0);
        assert_int_equal(bn_rule_stats(b)->streamed, observed);
        assert_int_equal(bn_rule_stats(a)->streamed, 0);
        bn_rule_destroy(&a);
        bn_rule_destroy(&b);
    }
}

/* Trimmed mean and median streamed (each observed vector's order keys kept
 * in the rule's store, rules.h), bit for bit against the straightforward
 * definition and against the call without streaming, on every kernel set:
 * the store read in place (every slot observed, in order) and mixed with
 * vectors computed at the aggregate (slots that never came, arrival in any
 * order, a vector not observed, a non-finite one left out; a non-finite
 * x_self replaced by x_prev: nothing reused); b = 0, 1, n / 5, the largest b and the
 * median; a dimension with a partial group; ties, +-0, huge and tiny. */
static void s_streaming_trim_round(bn_rng_t *r, uint32_t k, int pattern, bn_kernels_t ks)
{
    enum { D = 53, KMAX = 64 };
    static float prev[D], self[D], nb[KMAX * D], out_a[D], out_b[D], col[KMAX + 1];
    const float *x_nb[KMAX];
    float wa[KMAX + 1], wb[KMAX + 1];
    uint32_t deg = pattern == 1 ? k + 3 : k;         /* pattern 1: 3 never came */
    for (int c = 0; c < D; c++) {
        prev[c] = s_tricky(r, (pattern + c) % 4);
        self[c] = s_tricky(r, (pattern + c) % 4);
        for (uint32_t j = 0; j < deg; j++)
            nb[j * D + c] = s_tricky(r, (pattern + c) % 4);
    }
    if (pattern == 2)
        nb[1 * D + 7] = NAN;                          /* left out by the pre-filter */
    if (pattern == 3)
        self[D - 1] = INFINITY;                       /* x_prev takes x_self's place */
    uint32_t order[KMAX];
    for (uint32_t i = 0; i < deg; i++)
        order[i] = i;
    if (pattern == 1)
        bn_rng_shuffle_u32(r, order, deg);
    uint32_t bs[] = { 0, 1, (k + 1) / 5, k / 2, UINT32_MAX /* median */ };
    for (size_t q = 0; q < BN_ARRAY_LEN(bs); q++) {
        bn_rule_opts_t o;
        s_opts(&o, bs[q] == UINT32_MAX ? RK("median") : RK("trimmed-mean"));
        if (bs[q] != UINT32_MAX)
            assert_int_equal(bn_rule_opts_put(&o, "trim", bs[q]), BN_OK);
        bn_rule_t *a = bn_rule_new(&o, D, deg), *b = bn_rule_new(&o, D, deg);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(bn_rule_begin(b, prev, self), BN_OK);
        uint64_t expect = 0;
        for (uint32_t t = 0; t < deg; t++) {
            uint32_t i = order[t];
            if ((pattern == 1 && i % 4 == 1) || (pattern == 2 && i == 3))
                continue;                             /* never came / not observed */
            assert_int_equal(bn_rule_observe(b, i, nb + i * D), BN_OK);
            expect += !(pattern == 2 && i == 1);      /* the NaN one is not in the set */
        }
        uint32_t kk = 0;
        for (uint32_t i = 0; i < deg; i++)
            if (!(pattern == 1 && i % 4 == 1))
                x_nb[kk++] = nb + i * D;
        bn_agg_input_t in = { .dim = D, .x_prev = prev, .x_self = self, .k = kk, .x_nb = x_nb };
        assert_int_equal(bn_rule_aggregate(a, &in, out_a, wa), BN_OK);
        assert_int_equal(bn_rule_aggregate(b, &in, out_b, wb), BN_OK);
        assert_memory_equal(out_a, out_b, sizeof out_a);
        assert_memory_equal(wa, wb, (kk + 1) * sizeof *wa);
        /* the set: the finite neighbours in x_nb order, then self (or x_prev) */
        uint32_t n = 0;
        const float *set[KMAX + 1];
        for (uint32_t j = 0; j < kk; j++)
            if (!(pattern == 2 && x_nb[j] == nb + 1 * D))
                set[n++] = x_nb[j];
        set[n++] = pattern == 3 ? prev : self;
        uint32_t bb = bs[q] == UINT32_MAX || 2 * bs[q] >= n ? (n - 1) / 2 : bs[q];
        assert_int_equal(bn_rule_stats(b)->streamed, bb == 0 || pattern == 3 ? 0 : expect);
        for (int c = 0; c < D && bb > 0; c++) {
            for (uint32_t j = 0; j < n; j++)
                col[j] = set[j][c];
            float ref = s_ref_trimmed(col, n, bb);
            if (memcmp(&ref, &out_b[c], sizeof ref) != 0)
                fail_msg("streamed %s k=%u pattern %d b=%u c=%d: %a, expected %a (set %s)",
                         bs[q] == UINT32_MAX ? "median" : "trimmed", k, pattern, bb, c,
                         (double) out_b[c], (double) ref, bn_kernels_name(ks));
        }
        bn_rule_destroy(&a);
        bn_rule_destroy(&b);
    }
}

static void s_streaming_trim_exact(bn_kernels_t set)
{
    uint32_t ks[] = { 1, 2, 4, 9, 29, 41, 60 };   /* 60: the search (b > 24) */
    bn_rng_t r;
    bn_rng_seed(&r, 41, 3);
    for (size_t t = 0; t < BN_ARRAY_LEN(ks); t++)
        for (int pattern = 0; pattern < 4; pattern++)
            s_streaming_trim_round(&r, ks[t], pattern, set);
}

static void test_streaming_trim_exact(void **state)
{
    (void) state;
    s_each_kernel_set(s_streaming_trim_exact);
}

/* ---- no allocation in bn_rule_aggregate -------------------------------------- */
#ifdef S_COUNT_ALLOCS
static float s_fake_loss(void *ctx, const float *x)
{
    (void) ctx;
    return x[0] * x[0];
}

/* ctx points at the dimension */
static void s_fake_grad(void *ctx, const float *x, float *g)
{
    (void) x;
    size_t dim = *(const size_t *) ctx;
    for (size_t c = 0; c < dim; c++)
        g[c] = -1.0f;
}
#endif

static void test_no_allocation(void **state)
{
    (void) state;
#ifdef S_COUNT_ALLOCS
    enum { D = 600, K = 6 };
    static float nb[K * D], prev[D], self[D], out[D], w[K + 1];
    bn_rng_t r;
    bn_rng_seed(&r, 3, 1);
    for (int c = 0; c < D; c++) {
        prev[c] = (float) bn_rng_normal(&r);
        self[c] = prev[c] + 0.1f;
        for (int j = 0; j < K; j++)
            nb[j * D + c] = self[c] + 0.05f * (float) bn_rng_normal(&r);
    }
    const float *ptr[K];
    uint32_t ids[K];
    for (int j = 0; j < K; j++) {
        ptr[j] = nb + j * D;
        ids[j] = (uint32_t) j;
    }
    size_t dim = D;
    bn_oracle_t oracle = { &dim, s_fake_loss, s_fake_grad };
    bn_agg_input_t in = { .dim = D, .x_prev = prev, .x_self = self, .k = K, .x_nb = ptr,
                          .nb_id = ids, .oracle = &oracle };
    for (bn_rule_kind_t kind = 0; kind < bn_rule_count(); kind++) {
        bn_rule_opts_t o;
        s_opts(&o, (bn_rule_kind_t) kind);
        if (kind == RK("trimmed-mean") || kind == RK("krum"))
            assert_int_equal(bn_rule_opts_put(&o, "bucketing", 2), BN_OK);
        bn_rule_t *rule = bn_rule_new(&o, D, K);
        assert_non_null(rule);
        s_allocs = 0;
        s_counting = 1;
        int rc = bn_rule_aggregate(rule, &in, out, w);
        rc |= bn_rule_aggregate(rule, &in, out, w);
        s_counting = 0;
        assert_int_equal(rc, BN_OK);
        assert_int_equal(s_allocs, 0);
        bn_rule_destroy(&rule);
    }
    /* the counter itself works */
    s_counting = 1;
    void *p = malloc(16);
    s_counting = 0;
    free(p);
    assert_int_equal(s_allocs, 1);
#else
    skip();
#endif
}

/* ---- robustness under a large reverse vector ----------------------------------- */
static double s_rel_dist(const float *a, const float *b, size_t d)
{
    double num = 0, den = 0;
    for (size_t c = 0; c < d; c++) {
        num += ((double) a[c] - b[c]) * ((double) a[c] - b[c]);
        den += (double) b[c] * b[c];
    }
    return sqrt(num / den);
}

static void test_reverse_attack(void **state)
{
    (void) state;
    enum { D = 2000, H = 9, BYZ = 3, K = H + BYZ };
    static float prev[D], self[D], nb[K * D], out[D], hmean[D], step[D];
    bn_rng_t r;
    bn_rng_seed(&r, 11, 2);
    for (int c = 0; c < D; c++) {
        prev[c] = (float) bn_rng_normal(&r);
        step[c] = 0.05f * (float) bn_rng_normal(&r);       /* shared descent direction */
        self[c] = prev[c] + step[c] + 0.01f * (float) bn_rng_normal(&r);
        hmean[c] = self[c];
    }
    for (int j = 0; j < H; j++)
        for (int c = 0; c < D; c++) {
            nb[j * D + c] = prev[c] + step[c] + 0.01f * (float) bn_rng_normal(&r);
            hmean[c] += nb[j * D + c];
        }
    for (int c = 0; c < D; c++)
        hmean[c] /= (float) (H + 1);
    for (int j = H; j < K; j++)                               /* reverse: -honest mean */
        for (int c = 0; c < D; c++)
            nb[j * D + c] = -10.0f * hmean[c];

    bn_rule_opts_t o;
    s_opts(&o, BN_RULE_MEAN);
    assert_int_equal(s_run(&o, D, prev, self, K, nb, out, NULL, NULL), BN_OK);
    assert_true(s_rel_dist(out, hmean, D) > 1.0);

    bn_rule_kind_t robust[] = { RK("similarity"), RK("trimmed-mean"), RK("median"),
                                RK("krum"), RK("multi-krum"), RK("similarity-cos"),
                                RK("clipped-gossip"), RK("brsgd"), RK("robust-similarity") };
    for (size_t i = 0; i < BN_ARRAY_LEN(robust); i++) {
        s_opts(&o, robust[i]);
        assert_int_equal(bn_rule_opts_put(&o, "trim", BYZ), BN_OK);
        assert_int_equal(bn_rule_opts_put(&o, "clip-tau", 0.1f), BN_OK);
        float w[K + 1];
        assert_int_equal(s_run(&o, D, prev, self, K, nb, out, w, NULL), BN_OK);
        double dist = s_rel_dist(out, hmean, D);
        print_message("%-15s rel. distance to honest mean %.4f\n", bn_rule_name(robust[i]), dist);
        assert_true(dist < 0.05);
        for (int j = H; j < K; j++) {
            if (robust[i] == RK("krum") || robust[i] == RK("multi-krum")
                || robust[i] == RK("brsgd"))
                assert_float_equal(w[j], 0.0, 0);
            if (robust[i] == RK("similarity") || robust[i] == RK("robust-similarity"))
                assert_true(w[j] < 0.05f);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_registry_tables),
        cmocka_unit_test(test_param_store),
        cmocka_unit_test(test_bad_options_and_args),
        cmocka_unit_test(test_mean_and_standalone),
        cmocka_unit_test(test_trimmed_mean_odd),
        cmocka_unit_test(test_trimmed_mean_even_and_few),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_trimmed_median_vs_sort),
        cmocka_unit_test(test_trimmed_median_exact),
        cmocka_unit_test(test_trimmed_search_hard),
        cmocka_unit_test(test_rules_same_on_every_kernel_set),
        cmocka_unit_test(test_similarity_weights),
        cmocka_unit_test(test_similarity_kl_single_sign),
        cmocka_unit_test(test_similarity_degenerate),
        cmocka_unit_test(test_krum),
        cmocka_unit_test(test_tv_norm),
        cmocka_unit_test(test_clipped_gossip),
        cmocka_unit_test(test_brsgd_selection),
        cmocka_unit_test(test_mozi),
        cmocka_unit_test(test_bygars_reputation),
        cmocka_unit_test(test_bygars_meta),
        cmocka_unit_test(test_rep_table),
        cmocka_unit_test(test_bucketing),
        cmocka_unit_test(test_nonfinite_excluded),
        cmocka_unit_test(test_huge_finite),
        cmocka_unit_test(test_no_allocation),
        cmocka_unit_test(test_reverse_attack),
        cmocka_unit_test(test_robust_similarity_adaptive),
        cmocka_unit_test(test_robust_similarity_memory),
        cmocka_unit_test(test_robust_similarity_degenerate),
        cmocka_unit_test(test_streaming_bit_identical),
        cmocka_unit_test(test_streaming_node_slots),
        cmocka_unit_test(test_streaming_trim_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
