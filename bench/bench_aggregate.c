/*  bench_aggregate.c -- per-node, per-round time of every aggregation rule on
 *  the CNN's d = 80,202 parameters with k = n - 1 - ... neighbours as in an
 *  Erdos-Renyi graph with p = 0.6 (k = 29, 59, 119, 179 for n = 50, 100, 200,
 *  300), single thread, against the floor no rule can beat: one read of the
 *  same k + 1 vectors (their sum).
 *
 *  usage: bench_aggregate [n ...]      (default: 50 100 200 300)
 *  env:   BN_BENCH_ROWS=a,b,...  only the rows whose label contains one of
 *         the comma-separated words (the floor is always timed)
 *  Prints one row per (rule, n): median milliseconds of the thread's CPU
 *  time (CLOCK_THREAD_CPUTIME_ID) over repetitions (at
 *  least 3 after a warm-up, up to 25 or 0.4 s), the multiple of the floor's
 *  median, and the fastest call.  mozi and bygars run with a cheap fake oracle
 *  (loss = x[0], gradient = a constant vector), so their numbers are the
 *  rule's own cost without the forward / backward passes that dominate them
 *  in a real run.  "last-arr." rows: bn_rule_begin and bn_rule_observe of
 *  the first k - 1 models as they "arrive" (untimed), then the time from the
 *  last arrival: its bn_rule_observe plus bn_rule_aggregate; "streamed"
 *  rows time begin + every observe + aggregate (the total CPU work of the
 *  round, so that work moved before the last arrival is not hidden).  What
 *  streams: the pre-filter's finite checks for every rule (aggregate.c),
 *  similarity's per-neighbour pass, trimmed mean's and median's order keys
 *  (their store, rules.h).  "wire finite" is not a rule: the finiteness
 *  check the receive path runs on each of the k payloads (wire.c), against
 *  the same floor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "layers.h"
#include "rng.h"
#include "wire.h"

#define DIM 80202

typedef struct {
    const char    *label;
    const char    *rule;          /* registry name */
    int            b;             /* -1: default; -2: n / 5 (the paper's b = 0.2 n) */
    uint32_t       bucketing;
    int            stream;        /* 1: bn_rule_begin / observe before, time the last
                                   * observe + the aggregate (after the last arrival);
                                   * 2: time all of it */
} row_t;

static const row_t s_rows[] = {
    { "standalone",         "standalone",      -1, 0, 0 },
    { "mean",               "mean",            -1, 0, 0 },
    { "mean last-arr.",     "mean",            -1, 0, 1 },
    { "similarity",         "similarity",   -1, 0, 0 },
    { "similarity last-arr.", "similarity", -1, 0, 1 },
    { "similarity streamed", "similarity",  -1, 0, 2 },
    { "similarity-kl",      "similarity-kl",  -1, 0, 0 },
    { "similarity-cos",     "similarity-cos", -1, 0, 0 },
    { "trimmed-mean b=1",   "trimmed-mean",  1, 0, 0 },
    { "trimmed-mean b=n/5", "trimmed-mean", -2, 0, 0 },
    { "trimmed n/5 last-arr.", "trimmed-mean", -2, 0, 1 },
    { "trimmed n/5 streamed", "trimmed-mean", -2, 0, 2 },
    { "median",             "median",       -1, 0, 0 },
    { "median last-arr.",   "median",       -1, 0, 1 },
    { "median streamed",    "median",       -1, 0, 2 },
    { "krum",               "krum",         -2, 0, 0 },
    { "multi-krum",         "multi-krum",   -2, 0, 0 },
    { "tv-norm",            "tv-norm",      -1, 0, 0 },
    { "mozi (fake oracle)", "mozi",         -2, 0, 0 },
    { "clipped-gossip",     "clipped-gossip", -1, 0, 0 },
    { "clipped last-arr.",  "clipped-gossip", -1, 0, 1 },
    { "brsgd",              "brsgd",        -1, 0, 0 },
    { "bygars++ (fake oracle)", "bygars++", -1, 0, 0 },
    { "bygars k=2 (fake oracle)", "bygars", -1, 0, 0 },
    { "bucketing2+median",  "median",       -1, 2, 0 },
    { "bucketing2+krum",    "krum",         -2, 2, 0 },
};

static float s_loss(void *ctx, const float *x)
{
    (void) ctx;
    return x[0];
}

static void s_grad(void *ctx, const float *x, float *g)
{
    (void) ctx;
    (void) x;
    for (size_t c = 0; c < DIM; c++)
        g[c] = 0.001f;
}

/* CPU time of this thread: on a shared machine the time other processes
 * hold the core is not counted (their cache pressure still is). */
static double s_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* Median seconds of fn over repetitions: at least 3, until 0.4 s or 25 runs. */
#define TIME_IT(result, best, stmt)                                        \
    do {                                                                   \
        double ts_[25];                                                    \
        int nr_ = 0;                                                       \
        double start_ = bn_now();                                          \
        stmt; /* warm-up */                                                \
        while (nr_ < 25 && (nr_ < 3 || bn_now() - start_ < 0.4)) {         \
            double t0_ = s_cpu_now();                                      \
            stmt;                                                          \
            ts_[nr_++] = s_cpu_now() - t0_;                                \
        }                                                                  \
        qsort(ts_, (size_t) nr_, sizeof(double), s_cmp);                   \
        (result) = ts_[nr_ / 2];                                           \
        (best) = ts_[0];                                                   \
    } while (0)

static volatile float s_sink;

/* 1 if the row is selected by BN_BENCH_ROWS (unset or empty: every row). */
static int s_row_wanted(const char *label)
{
    const char *sel = getenv("BN_BENCH_ROWS");
    if (!sel || !*sel)
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", sel);
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
        if (strstr(label, w))
            return 1;
    return 0;
}

static void s_floor(const float *const *v, uint32_t n, float *out)
{
    memcpy(out, v[0], DIM * sizeof *out);
    for (uint32_t j = 1; j < n; j++) {
        const float *restrict x = v[j];
        for (size_t c = 0; c < DIM; c++)
            out[c] += x[c];
    }
    s_sink = out[DIM / 2];
}

int main(int argc, char **argv)
{
    int ns[8] = { 50, 100, 200, 300 };
    int nn = 4;
    if (argc > 1) {
        nn = 0;
        for (int i = 1; i < argc && nn < 8; i++) {
            int n = atoi(argv[i]);
            if (n < 4 || n > 1000) {
                fprintf(stderr, "bench_aggregate: n must be in [4, 1000], got '%s'\n", argv[i]);
                return 2;
            }
            ns[nn++] = n;
        }
    }
    uint32_t kmax = 0;
    for (int i = 0; i < nn; i++) {
        uint32_t k = (uint32_t) (0.6 * (ns[i] - 1));
        kmax = k > kmax ? k : kmax;
    }
    /* model-like vectors: x_prev, a shared step, honest noise */
    bn_rng_t r;
    bn_rng_seed(&r, 1, 42);
    float *prev = bn_alloc_floats(DIM), *self = bn_alloc_floats(DIM), *out = bn_alloc_floats(DIM);
    float *all = bn_alloc_floats((size_t) kmax * DIM);
    const float **ptr = calloc(kmax + 1, sizeof *ptr);
    uint32_t *ids = calloc(kmax + 1, sizeof *ids);
    float *w = calloc(kmax + 1, sizeof *w);
    if (!prev || !self || !out || !all || !ptr || !ids || !w) {
        fprintf(stderr, "bench_aggregate: out of memory\n");
        return 1;
    }
    for (size_t c = 0; c < DIM; c++) {
        prev[c] = 0.05f * (float) bn_rng_normal(&r);
        self[c] = prev[c] + 0.001f * (float) bn_rng_normal(&r);
    }
    for (uint32_t j = 0; j < kmax; j++) {
        for (size_t c = 0; c < DIM; c++)
            all[(size_t) j * DIM + c] = self[c] + 0.001f * (float) bn_rng_normal(&r);
        ptr[j] = all + (size_t) j * DIM;
        ids[j] = j;
    }
    bn_oracle_t oracle = { NULL, s_loss, s_grad };

    printf("# d = %d, single thread; ms = median thread CPU time per call; x floor = ms / floor ms;"
           " min = fastest call; kernels %s\n", DIM, bn_kernels_name(bn_kernels_current()));
    printf("%-22s %5s %5s %10s %9s %10s\n", "rule", "n", "k", "ms", "x floor", "min ms");
    for (int i = 0; i < nn; i++) {
        uint32_t k = (uint32_t) (0.6 * (ns[i] - 1));
        ptr[k] = self;
        double floor_s, floor_min;
        TIME_IT(floor_s, floor_min, s_floor(ptr, k + 1, out));
        printf("%-22s %5d %5u %10.3f %9.2f %10.3f\n", "floor (sum k+1 vecs)", ns[i], k,
               floor_s * 1e3, 1.0, floor_min * 1e3);
        if (s_row_wanted("wire finite (k vecs)")) {
            /* what a node's receive path does to each of a round's k
             * payloads before it keeps one (wire.c, bn_wire_payload_finite) */
            double t, tmin;
            int finite = 1;
            TIME_IT(t, tmin, {
                for (uint32_t j = 0; j < k; j++)
                    finite &= bn_wire_payload_finite(ptr[j], DIM);
            });
            if (!finite)
                fprintf(stderr, "bench_aggregate: a finite vector was reported non-finite\n");
            printf("%-22s %5d %5u %10.3f %9.2f %10.3f\n", "wire finite (k vecs)", ns[i], k,
                   t * 1e3, t / floor_s, tmin * 1e3);
        }
        bn_agg_input_t in = { .dim = DIM, .x_prev = prev, .x_self = self, .k = k, .x_nb = ptr,
                              .nb_id = ids, .oracle = &oracle };
        for (size_t q = 0; q < sizeof s_rows / sizeof s_rows[0]; q++) {
            const row_t *row = &s_rows[q];
            if (!s_row_wanted(row->label))
                continue;
            bn_rule_opts_t o;
            bn_rule_kind_t kind;
            if (bn_rule_parse(row->rule, &kind) != BN_OK) {
                fprintf(stderr, "bench_aggregate: no rule %s\n", row->rule);
                return 1;
            }
            bn_rule_opts_default(&o, kind);
            if (row->b >= 0)
                bn_rule_opts_put(&o, "trim", (uint32_t) row->b);
            else if (row->b == -2)
                bn_rule_opts_put(&o, "trim", (uint32_t) (ns[i] / 5));
            bn_rule_opts_put(&o, "bucketing", row->bucketing);
            bn_rule_t *rule = bn_rule_new(&o, DIM, k);
            if (!rule) {
                fprintf(stderr, "bench_aggregate: cannot create %s\n", row->label);
                return 1;
            }
            double t, tmin;
            int rc = BN_OK;
            if (row->stream == 1) {
                /* the per-neighbour work is done as models arrive; time what
                 * is left after the last one */
                double ts[25];
                int nr = 0;
                double start = bn_now();
                while (nr < 25 && (nr < 3 || bn_now() - start < 0.8)) {
                    rc |= bn_rule_begin(rule, prev, self);
                    for (uint32_t j = 0; j + 1 < k; j++)
                        rc |= bn_rule_observe(rule, j, ptr[j]);
                    double t0 = s_cpu_now();
                    if (k > 0)
                        rc |= bn_rule_observe(rule, k - 1, ptr[k - 1]);
                    rc |= bn_rule_aggregate(rule, &in, out, w);
                    ts[nr++] = s_cpu_now() - t0;
                }
                qsort(ts, (size_t) nr, sizeof(double), s_cmp);
                t = ts[nr / 2];
                tmin = ts[0];
            } else if (row->stream == 2) {
                TIME_IT(t, tmin, {
                    rc |= bn_rule_begin(rule, prev, self);
                    for (uint32_t j = 0; j < k; j++)
                        rc |= bn_rule_observe(rule, j, ptr[j]);
                    rc |= bn_rule_aggregate(rule, &in, out, w);
                });
            } else {
                TIME_IT(t, tmin, rc |= bn_rule_aggregate(rule, &in, out, w));
            }
            if (rc != BN_OK)
                fprintf(stderr, "bench_aggregate: %s failed: %s\n", row->label, bn_strerror(rc));
            printf("%-22s %5d %5u %10.3f %9.2f %10.3f\n", row->label, ns[i], k, t * 1e3,
                   t / floor_s, tmin * 1e3);
            fflush(stdout);
            bn_rule_destroy(&rule);
        }
    }
    bn_free(prev);
    bn_free(self);
    bn_free(out);
    bn_free(all);
    free(ptr);
    free(ids);
    free(w);
    return 0;
}
