/*  test_attack.c -- every attack vector of attack.c on small hand-computed inputs,
 *  the ALIE z values and the accuracy of the normal quantile.
 *
 *  Reference quantiles are Phi^-1 values computed independently (Python's
 *  statistics.NormalDist().inv_cdf, Wichura's AS241, and textbook tables).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "attack.h"
#include "roles.h"
#include <stdio.h>

/* Three honest models of dim 4 (ids 7, 2, 5) and the attacker's own.
 *   coordinate 0: 1, 2, 3     mean 2    pop. sigma sqrt(2/3)
 *   coordinate 1: 0, 0, 0     mean 0    sigma 0
 *   coordinate 2: -3, 3, 6    mean 2    sigma sqrt((25 + 1 + 16) / 3) = sqrt(14)
 *   coordinate 3: 10, 10, 16  mean 12   sigma sqrt((4 + 4 + 16) / 3) = sqrt(8)
 */
static const float s_h0[4] = { 1, 0, -3, 10 };
static const float s_h1[4] = { 2, 0, 3, 10 };
static const float s_h2[4] = { 3, 0, 6, 16 };
static const float *const s_honest[3] = { s_h0, s_h1, s_h2 };
static const uint32_t s_ids[3] = { 7, 2, 5 };
static const float s_prev[4] = { 0.5f, -1.0f, 2.0f, 0.0f };
static const float s_self[4] = { 1.0f, -1.5f, 2.0f, 4.0f };

static bn_attack_input_t s_input(bn_rng_t *rng)
{
    bn_attack_input_t in = {
        .dim = 4, .n_honest = 3, .honest = s_honest, .honest_id = s_ids,
        .x_prev = s_prev, .x_self = s_self, .rng = rng,
    };
    return in;
}

static void s_assert_vec(const float *got, const double *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        if (fabs((double) got[i] - want[i]) > tol) {
            print_error("coordinate %zu: got %.9g want %.9g\n", i, (double) got[i], want[i]);
            fail();
        }
    }
}

static void test_names_and_parse(void **state)
{
    (void) state;
    const char *names[] = { "none", "dlie", "random", "reverse", "sign-flip", "gaussian",
                            "label-flip", "ipm", "alie", "mimic", "constant", "crash", "nan",
                            "echo", "drift", "dissensus", "minmax", "minsum", "random-sign-flip",
                            "ofom", "paf", "model-negation", "gradient-scale", "normalized-mean",
                            "mimic2", "mixed" };
    assert_int_equal(BN_ARRAY_LEN(names), BN_ATTACK_COUNT);
    for (int k = 0; k < BN_ATTACK_COUNT; k++) {
        bn_attack_kind_t got = BN_ATTACK_COUNT;
        assert_string_equal(bn_attack_name((bn_attack_kind_t) k), names[k]);
        assert_int_equal(bn_attack_parse(names[k], &got), BN_OK);
        assert_int_equal(got, k);
    }
    bn_attack_kind_t got;
    assert_int_equal(bn_attack_parse("sign_flip", &got), BN_OK);
    assert_int_equal(got, BN_ATTACK_SIGN_FLIP);
    assert_int_equal(bn_attack_parse("label_flip", &got), BN_OK);
    assert_int_equal(got, BN_ATTACK_LABEL_FLIP);
    assert_int_equal(bn_attack_parse("lie", &got), BN_EARG);
    assert_int_equal(bn_attack_parse("dlie2", &got), BN_EARG);
    assert_int_equal(bn_attack_parse("", &got), BN_EARG);
    assert_int_equal(bn_attack_parse("signflip", &got), BN_EARG);
    assert_int_equal(bn_attack_parse(NULL, &got), BN_EARG);
    assert_string_equal(bn_attack_name(BN_ATTACK_COUNT), "unknown");
}

static void test_defaults_and_predicates(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_DLIE);
    assert_int_equal(o.kind, BN_ATTACK_DLIE);
    assert_true(o.z == 2.0f && o.epsilon == 0.1f && o.gaussian_std == 200.0f && o.value == 1.0f);
    int trains = 0, needs = 0;
    for (int k = 0; k < BN_ATTACK_COUNT; k++) {
        trains += bn_attack_trains((bn_attack_kind_t) k);
        needs += bn_attack_needs_honest((bn_attack_kind_t) k);
    }
    assert_int_equal(trains, 5);
    assert_true(bn_attack_trains(BN_ATTACK_RANDOM_SIGN_FLIP) && bn_attack_trains(BN_ATTACK_GRADIENT_SCALE));
    assert_true(bn_attack_trains(BN_ATTACK_NONE) && bn_attack_trains(BN_ATTACK_SIGN_FLIP)
                && bn_attack_trains(BN_ATTACK_LABEL_FLIP));
    assert_int_equal(needs, 16);
    assert_true(bn_attack_needs_honest(BN_ATTACK_OFOM) && bn_attack_needs_honest(BN_ATTACK_PAF)
                && bn_attack_needs_honest(BN_ATTACK_MODEL_NEGATION)
                && bn_attack_needs_honest(BN_ATTACK_NORMALIZED_MEAN) && bn_attack_needs_honest(BN_ATTACK_MIMIC2));
    assert_true(o.rsf_std == 10.0f && o.fang_b == 2.0f && o.negation_scale == 1e10f
                && o.gradient_scale == 1e10f && o.mix[0] == '\0');
    assert_true(bn_attack_needs_honest(BN_ATTACK_DLIE) && bn_attack_needs_honest(BN_ATTACK_RANDOM)
                && bn_attack_needs_honest(BN_ATTACK_REVERSE) && bn_attack_needs_honest(BN_ATTACK_IPM)
                && bn_attack_needs_honest(BN_ATTACK_ALIE) && bn_attack_needs_honest(BN_ATTACK_MIMIC));
    int per_victim = 0;
    for (int k = 0; k < BN_ATTACK_COUNT; k++)
        per_victim += bn_attack_per_victim((bn_attack_kind_t) k);
    assert_int_equal(per_victim, 5);
    assert_true(bn_attack_per_victim(BN_ATTACK_ECHO) && bn_attack_per_victim(BN_ATTACK_DRIFT)
                && bn_attack_per_victim(BN_ATTACK_DISSENSUS) && bn_attack_per_victim(BN_ATTACK_MINMAX)
                && bn_attack_per_victim(BN_ATTACK_MINSUM));
    for (int k = 0; k < BN_ATTACK_COUNT; k++)
        if (bn_attack_per_victim((bn_attack_kind_t) k))
            assert_true(bn_attack_needs_honest((bn_attack_kind_t) k)
                        && !bn_attack_trains((bn_attack_kind_t) k));
    assert_true(o.drift_scale == 1.0f && o.dissensus_scale == 1.0f && o.drift_dir == BN_DRIFT_REVERSE
                && o.drift_target == UINT32_MAX);
    bn_drift_dir_t dir;
    const char *dirs[] = { "reverse", "random", "target" };
    for (int k = 0; k < BN_DRIFT_COUNT; k++) {
        assert_int_equal(bn_drift_dir_parse(dirs[k], &dir), BN_OK);
        assert_int_equal(dir, k);
        assert_string_equal(bn_drift_dir_name((bn_drift_dir_t) k), dirs[k]);
    }
    assert_int_equal(bn_drift_dir_parse("up", &dir), BN_EARG);
    assert_int_equal(bn_drift_dir_parse(NULL, &dir), BN_EARG);
    assert_string_equal(bn_drift_dir_name(BN_DRIFT_COUNT), "unknown");
}

/* ---- per-victim attacks ------------------------------------------------
 * Victim id 2 with x_h = (1, 1, 0); its honest neighbours (no graph given:
 * every other known honest model)
 *   id 7: (4, 5, 0)   distance 5
 *   id 5: (1, 1, 2)   distance 2
 *   id 9: (1, -2, 0)  distance 3        -> r_h = median(5, 2, 3) = 3
 * The honest mean over all four is mu = (7/4, 5/4, 1/2), ||mu||^2 = 4.875. */
static const float s_vh[3] = { 1, 1, 0 };
static const float s_v7[3] = { 4, 5, 0 };
static const float s_v5[3] = { 1, 1, 2 };
static const float s_v9[3] = { 1, -2, 0 };
static const float *const s_vhonest[4] = { s_v7, s_vh, s_v5, s_v9 };
static const uint32_t s_vids[4] = { 7, 2, 5, 9 };

static bn_attack_input_t s_vinput(void)
{
    bn_attack_input_t in = {
        .dim = 3, .n_honest = 4, .honest = s_vhonest, .honest_id = s_vids,
        .x_prev = s_vh, .x_self = s_vh, .rng = NULL, .victim = 2, .victim_x = s_vh, .graph = NULL,
    };
    return in;
}

static void test_echo_drift(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_input_t in = s_vinput();
    float out[3];

    bn_attack_opts_default(&o, BN_ATTACK_ECHO);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, s_vh, sizeof out);

    /* reverse: x_h - s mu / ||mu||, s = 3 (scale 1), then 6 (scale 2) */
    bn_attack_opts_default(&o, BN_ATTACK_DRIFT);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    double nm = sqrt(4.875);
    const double rev[3] = { 1 - 3 * 1.75 / nm, 1 - 3 * 1.25 / nm, -3 * 0.5 / nm };
    s_assert_vec(out, rev, 3, 1e-6);
    o.drift_scale = 2.0f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double rev2[3] = { 1 - 6 * 1.75 / nm, 1 - 6 * 1.25 / nm, -6 * 0.5 / nm };
    s_assert_vec(out, rev2, 3, 1e-6);

    /* target 7: u = (3, 4, 0) / 5, out = x_h + 3 u */
    o.drift_scale = 1.0f;
    o.drift_dir = BN_DRIFT_TARGET;
    o.drift_target = 7;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double tg[3] = { 2.8, 3.4, 0 };
    s_assert_vec(out, tg, 3, 1e-6);
    /* no target (or an unknown id): toward the zero model, u = -(1, 1, 0) / sqrt 2 */
    o.drift_target = UINT32_MAX;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double tz[3] = { 1 - 3 / sqrt(2.0), 1 - 3 / sqrt(2.0), 0 };
    s_assert_vec(out, tz, 3, 1e-6);
    o.drift_target = 11;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    s_assert_vec(out, tz, 3, 1e-6);

    /* random: a unit direction times 3, the same every call and for every
     * victim (it depends on the seed only), another for another seed */
    o.drift_dir = BN_DRIFT_RANDOM;
    o.seed = 1;
    float r1[3], r2[3], r3[3];
    assert_int_equal(bn_attack_craft(&o, &in, r1), BN_OK);
    assert_int_equal(bn_attack_craft(&o, &in, r2), BN_OK);
    assert_memory_equal(r1, r2, sizeof r1);
    double n2 = 0;
    for (int j = 0; j < 3; j++)
        n2 += ((double) r1[j] - s_vh[j]) * ((double) r1[j] - s_vh[j]);
    assert_true(fabs(sqrt(n2) - 3.0) < 1e-5);
    bn_attack_input_t in5 = in;                 /* victim 5: same u, its own r_h */
    in5.victim = 5;
    in5.victim_x = s_v5;
    assert_int_equal(bn_attack_craft(&o, &in5, r3), BN_OK);
    /* r_5: distances to 7, 2, 9 are sqrt 29, 2, sqrt 13 -> median sqrt 13 */
    for (int j = 0; j < 3; j++)
        assert_true(fabs(((double) r3[j] - s_v5[j]) / sqrt(13.0) - ((double) r1[j] - s_vh[j]) / 3.0) < 1e-5);
    o.seed = 2;
    assert_int_equal(bn_attack_craft(&o, &in, r2), BN_OK);
    assert_true(memcmp(r1, r2, sizeof r1) != 0);
}

static void test_dissensus(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_input_t in = s_vinput();
    float out[3];
    /* neighbour mean (2, 4/3, 2/3); x_h - mean = (-1, -1/3, -2/3), norm sqrt(14)/3;
     * out = x_h + 3 (x_h - mean) / norm = x_h + (9 / sqrt 14) (-1, -1/3, -2/3) */
    bn_attack_opts_default(&o, BN_ATTACK_DISSENSUS);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    double k = 9 / sqrt(14.0);
    const double want[3] = { 1 - k, 1 - k / 3, -2 * k / 3 };
    s_assert_vec(out, want, 3, 1e-6);
    o.dissensus_scale = 0.5f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double half[3] = { 1 - k / 2, 1 - k / 6, -k / 3 };
    s_assert_vec(out, half, 3, 1e-6);
    o.dissensus_scale = 0.0f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, s_vh, sizeof out);
}

static void test_victim_neighbourhood_from_graph(void **state)
{
    (void) state;
    /* edges 2-7, 2-9, 5-7 on 10 nodes: victim 2's honest neighbours are 7, 9 */
    uint32_t off[11] = { 0, 0, 0, 2, 2, 2, 3, 3, 5, 5, 6 };
    uint32_t adj[6] = { 7, 9, 7, 2, 5, 2 };
    bn_topology_t g = { .n = 10, .offsets = off, .adj = adj };
    assert_true(bn_topology_has_edge(&g, 2, 7) && !bn_topology_has_edge(&g, 2, 5));
    bn_attack_input_t in = s_vinput();
    in.graph = &g;
    bn_attack_opts_t o;
    float out[3];
    /* r_h = median(5, 3) = 4 */
    bn_attack_opts_default(&o, BN_ATTACK_DRIFT);
    o.drift_dir = BN_DRIFT_TARGET;
    o.drift_target = 7;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double tg[3] = { 1 + 4 * 0.6, 1 + 4 * 0.8, 0 };
    s_assert_vec(out, tg, 3, 1e-6);
    /* dissensus: neighbour mean (2.5, 1.5, 0), x_h - mean = (-1.5, -0.5, 0) */
    bn_attack_opts_default(&o, BN_ATTACK_DISSENSUS);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    double nn = sqrt(2.5);
    const double ds[3] = { 1 - 4 * 1.5 / nn, 1 - 4 * 0.5 / nn, 0 };
    s_assert_vec(out, ds, 3, 1e-6);
}

static void test_minmax_minsum(void **state)
{
    (void) state;
    /* S = {x_h, 7, 5, 9}; pairwise distances h-7 5, h-5 2, h-9 3, 7-5 sqrt 29,
     * 7-9 sqrt 58, 5-9 sqrt 13: R = sqrt 58; rows of squared distances
     * h 38, 7 112, 5 46, 9 80: max 112. */
    bn_attack_opts_t o;
    bn_attack_input_t in = s_vinput();
    float out[3];
    /* u = (0.6, 0.8, 0) (target 7).  minmax: gamma_7 = 5 + sqrt 58,
     * gamma_5 = sqrt 54, gamma_9 = -2.4 + sqrt(54.76) = 5, gamma_h = sqrt 58
     * -> gamma = 5, out = (4, 5, 0). */
    bn_attack_opts_default(&o, BN_ATTACK_MINMAX);
    o.drift_dir = BN_DRIFT_TARGET;
    o.drift_target = 7;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double mm[3] = { 4, 5, 0 };
    s_assert_vec(out, mm, 3, 1e-5);
    /* u = (0, -1, 0) (target 9).  minmax: gamma_7 = -4 + 7 = 3 is the least:
     * out = (1, -2, 0).  minsum: 4 g^2 + 2 B g + C - 112 = 0 with
     * B = sum a.u = 4 + 0 - 3 = 1, C = 38: g = (-1 + sqrt 297) / 4. */
    o.drift_target = 9;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double mm9[3] = { 1, -2, 0 };
    s_assert_vec(out, mm9, 3, 1e-5);
    o.kind = BN_ATTACK_MINSUM;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double ms9[3] = { 1, 1 - (-1 + sqrt(297.0)) / 4, 0 };
    s_assert_vec(out, ms9, 3, 1e-5);
    /* a victim with no known neighbour: nothing to hide among, gamma = 0 */
    bn_attack_input_t alone = in;
    alone.n_honest = 1;
    alone.honest = &s_vhonest[1];
    alone.honest_id = &s_vids[1];
    assert_int_equal(bn_attack_craft(&o, &alone, out), BN_OK);
    assert_memory_equal(out, s_vh, sizeof out);
    o.kind = BN_ATTACK_DRIFT;                 /* r_h = 0 too */
    assert_int_equal(bn_attack_craft(&o, &alone, out), BN_OK);
    assert_memory_equal(out, s_vh, sizeof out);
}

static void test_per_victim_without_victim_model(void **state)
{
    (void) state;
    bn_attack_input_t in = s_vinput();
    in.victim_x = NULL;                       /* the victim's model did not arrive */
    float out[3];
    for (int k = 0; k < BN_ATTACK_COUNT; k++) {
        if (!bn_attack_per_victim((bn_attack_kind_t) k))
            continue;
        bn_attack_opts_t o;
        bn_attack_opts_default(&o, (bn_attack_kind_t) k);
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
        const double mu[3] = { 1.75, 1.25, 0.5 };
        s_assert_vec(out, mu, 3, 1e-6);
    }
}

static void test_dlie(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_DLIE);
    bn_attack_input_t in = s_input(NULL);
    float out[4];
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double want[4] = { 2 + 2 * sqrt(2.0 / 3), 0, 2 + 2 * sqrt(14.0), 12 + 2 * sqrt(8.0) };
    s_assert_vec(out, want, 4, 1e-5);
    /* z = -1.5 */
    o.z = -1.5f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double want2[4] = { 2 - 1.5 * sqrt(2.0 / 3), 0, 2 - 1.5 * sqrt(14.0), 12 - 1.5 * sqrt(8.0) };
    s_assert_vec(out, want2, 4, 1e-5);
    /* one honest model: sigma = 0, the model itself */
    in.n_honest = 1;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double want3[4] = { 1, 0, -3, 10 };
    s_assert_vec(out, want3, 4, 0);
}

static void test_reverse_ipm_mimic_constant_nan(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_input_t in = s_input(NULL);
    float out[4];

    bn_attack_opts_default(&o, BN_ATTACK_REVERSE);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double rev[4] = { -2, 0, -2, -12 };
    s_assert_vec(out, rev, 4, 1e-6);

    bn_attack_opts_default(&o, BN_ATTACK_IPM);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double ipm[4] = { -0.2, 0, -0.2, -1.2 };
    s_assert_vec(out, ipm, 4, 1e-6);
    o.epsilon = 2.0f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double ipm2[4] = { -4, 0, -4, -24 };
    s_assert_vec(out, ipm2, 4, 1e-6);

    bn_attack_opts_default(&o, BN_ATTACK_MIMIC);         /* lowest id is 2 -> s_h1 */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, s_h1, sizeof out);

    bn_attack_opts_default(&o, BN_ATTACK_CONSTANT);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double c1[4] = { 1, 1, 1, 1 };
    s_assert_vec(out, c1, 4, 0);
    o.value = -7.25f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double c2[4] = { -7.25, -7.25, -7.25, -7.25 };
    s_assert_vec(out, c2, 4, 0);

    bn_attack_opts_default(&o, BN_ATTACK_NAN);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    for (int i = 0; i < 4; i++)
        assert_true(isnan(out[i]));
}

static void test_sign_flip_label_flip_none_crash(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_input_t in = s_input(NULL);
    float out[4];

    bn_attack_opts_default(&o, BN_ATTACK_SIGN_FLIP);     /* 2 prev - self */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double sf[4] = { 0.0, -0.5, 2.0, -4.0 };
    s_assert_vec(out, sf, 4, 0);

    bn_attack_opts_default(&o, BN_ATTACK_LABEL_FLIP);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, s_self, sizeof out);

    bn_attack_opts_default(&o, BN_ATTACK_NONE);
    memset(out, 0, sizeof out);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, s_self, sizeof out);

    bn_attack_opts_default(&o, BN_ATTACK_CRASH);         /* out untouched */
    const float sentinel[4] = { 9, 9, 9, 9 };
    memcpy(out, sentinel, sizeof out);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, sentinel, sizeof out);
}

static void test_random_has_mean_norm(void **state)
{
    (void) state;
    bn_rng_t rng, rng2;
    bn_rng_seed(&rng, 5, BN_STREAM_ATTACK);
    bn_rng_seed(&rng2, 5, BN_STREAM_ATTACK);
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_RANDOM);
    bn_attack_input_t in = s_input(&rng);
    float out[4], out2[4];
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    /* ||(2, 0, 2, 12)|| = sqrt(152) */
    double norm = 0;
    for (int i = 0; i < 4; i++)
        norm += (double) out[i] * out[i];
    assert_true(fabs(sqrt(norm) - sqrt(152.0)) < 1e-4);
    /* deterministic from the RNG, and the direction is not the mean's */
    in.rng = &rng2;
    assert_int_equal(bn_attack_craft(&o, &in, out2), BN_OK);
    assert_memory_equal(out, out2, sizeof out);
    assert_false(out[1] == 0.0f && out[3] > 11.0f);
    /* next call: a new direction, same norm */
    in.rng = &rng;
    assert_int_equal(bn_attack_craft(&o, &in, out2), BN_OK);
    assert_memory_not_equal(out, out2, sizeof out);
}

static void test_gaussian_moments(void **state)
{
    (void) state;
    enum { D = 20000 };
    static float out[D];
    bn_rng_t rng;
    bn_rng_seed(&rng, 11, BN_STREAM_ATTACK);
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_GAUSSIAN);
    bn_attack_input_t in = { .dim = D, .rng = &rng };
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    double s = 0, s2 = 0;
    for (int i = 0; i < D; i++) {
        s += out[i];
        s2 += (double) out[i] * out[i];
    }
    double mean = s / D, sd = sqrt(s2 / D - mean * mean);
    /* standard error of the mean 200 / sqrt(20000) = 1.41; of the sd ~ 1.0 */
    assert_true(fabs(mean) < 6.0);
    assert_true(fabs(sd - 200.0) < 5.0);
}

static void test_alie_vector(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_ALIE);
    o.n = 50;
    o.b = 10;
    bn_attack_input_t in = s_input(NULL);
    float out[4];
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double z = 0.46769879911450835;       /* Phi^-1(0.68) */
    const double want[4] = { 2 + z * sqrt(2.0 / 3), 0, 2 + z * sqrt(14.0), 12 + z * sqrt(8.0) };
    s_assert_vec(out, want, 4, 1e-5);
    o.n = 0;                                     /* not configured: refused */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
    assert_memory_equal(out, s_self, sizeof out);
}

static void test_no_honest_models(void **state)
{
    (void) state;
    const bn_attack_kind_t kinds[] = { BN_ATTACK_DLIE, BN_ATTACK_RANDOM, BN_ATTACK_REVERSE,
                                       BN_ATTACK_IPM, BN_ATTACK_ALIE, BN_ATTACK_MIMIC };
    bn_rng_t rng;
    bn_rng_seed(&rng, 1, BN_STREAM_ATTACK);
    for (size_t k = 0; k < BN_ARRAY_LEN(kinds); k++) {
        bn_attack_opts_t o;
        bn_attack_opts_default(&o, kinds[k]);
        o.n = 50;
        o.b = 10;
        bn_attack_input_t in = s_input(&rng);
        in.n_honest = 0;
        float out[4] = { 0 };
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
        assert_memory_equal(out, s_self, sizeof out);   /* something plausible */
    }
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_DLIE);
    assert_int_equal(bn_attack_craft(&o, NULL, NULL), BN_EARG);
    o.kind = BN_ATTACK_COUNT;
    bn_attack_input_t in = s_input(NULL);
    float out[4];
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
}

/* Statistics over many models and a dim that is not a multiple of the block. */
static void test_large_dim_statistics(void **state)
{
    (void) state;
    enum { D = 1000, M = 5 };
    static float h[M][D], out[D];
    const float *ptr[M];
    uint32_t ids[M];
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < D; j++)
            h[i][j] = (float) (j % 17) + (float) i;   /* mean (j%17) + 2, pop. sd sqrt(2) */
        ptr[i] = h[i];
        ids[i] = (uint32_t) (10 - i);
    }
    bn_attack_opts_t o;
    bn_attack_opts_default(&o, BN_ATTACK_DLIE);
    bn_attack_input_t in = { .dim = D, .n_honest = M, .honest = ptr, .honest_id = ids };
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    for (int j = 0; j < D; j++)
        assert_true(fabs(out[j] - ((j % 17) + 2 + 2 * sqrt(2.0))) < 1e-5);
    bn_attack_opts_default(&o, BN_ATTACK_MIMIC);           /* lowest id 6 is h[4] */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, h[4], sizeof out);
}

static void test_alie_z_values(void **state)
{
    (void) state;
    /* s = floor(n/2 + 1) - b, z = Phi^-1((n - s) / n) */
    struct { uint32_t n, b; double z; } cases[] = {
        { 50, 10, 0.46769879911450835 },    /* s = 16, Phi^-1(0.68) */
        { 10, 2, 0.2533471031357998 },      /* s = 4,  Phi^-1(0.60) */
        { 100, 20, 0.49585034734745304 },   /* s = 31, Phi^-1(0.69) */
        { 20, 5, 0.5244005127080407 },      /* s = 6,  Phi^-1(0.70) */
        { 50, 0, -0.050153583464733656 },   /* s = 26, Phi^-1(0.48) */
        { 50, 24, 1.7506860712521695 },     /* s = 2,  Phi^-1(0.96) */
        { 50, 25, 2.0537489106318225 },     /* s = 1,  Phi^-1(0.98) */
        { 50, 40, 2.0537489106318225 },     /* s = -14 clamped to 1 */
        { 3, 3, 0.43072729929545733 },      /* s = -1 clamped to 1, Phi^-1(2/3) */
    };
    for (size_t i = 0; i < BN_ARRAY_LEN(cases); i++) {
        double z = bn_attack_alie_z(cases[i].n, cases[i].b);
        if (fabs(z - cases[i].z) > 1e-12) {
            print_error("n=%u b=%u: z %.17g want %.17g\n", cases[i].n, cases[i].b, z, cases[i].z);
            fail();
        }
    }
    assert_true(bn_attack_alie_z(2, 0) == 0.0);                 /* s = 1: Phi^-1(0.5) */
    assert_true(bn_attack_alie_z(0, 0) == 0.0);
}

static void test_norm_quantile_accuracy(void **state)
{
    (void) state;
    struct { double p, x; } q[] = {
        { 0.5, 0.0 },
        { 0.975, 1.9599639845400536 },
        { 0.9, 1.2815515655446008 },
        { 0.99, 2.3263478740408408 },
        { 0.999, 3.090232306167813 },
        { 0.999999, 4.753424308817089 },
        { 0.3, -0.5244005127080407 },
        { 0.02425, -1.9729610513118845 },       /* the region boundary */
        { 0.97575, 1.9729610513118847 },
        { 0.02, -2.0537489106318225 },
        { 1e-10, -6.361340902404056 },
        { 1e-300, -37.0470962993612 },
        { 0.8413447460685429, 1.0 },            /* Phi(1) */
    };
    for (size_t i = 0; i < BN_ARRAY_LEN(q); i++) {
        double got = bn_attack_norm_quantile(q[i].p);
        double tol = 1e-13 * BN_MAX(1.0, fabs(q[i].x));
        if (fabs(got - q[i].x) > tol) {
            print_error("p=%.17g got %.17g want %.17g\n", q[i].p, got, q[i].x);
            fail();
        }
    }
    /* symmetry and round trip through erfc over a grid */
    for (int i = 1; i < 1000; i++) {
        double p = i / 1000.0;
        double x = bn_attack_norm_quantile(p);
        assert_true(fabs(x + bn_attack_norm_quantile(1.0 - p)) < 1e-12);
        assert_true(fabs(0.5 * erfc(-x / sqrt(2.0)) - p) < 1e-15);
    }
    assert_true(isinf(bn_attack_norm_quantile(0.0)) && bn_attack_norm_quantile(0.0) < 0);
    assert_true(isinf(bn_attack_norm_quantile(1.0)) && bn_attack_norm_quantile(1.0) > 0);
    assert_true(isnan(bn_attack_norm_quantile(-0.1)));
    assert_true(isnan(bn_attack_norm_quantile(1.5)));
    assert_true(isnan(bn_attack_norm_quantile(NAN)));
}

/* ---- the seeds' remaining attacks (fixture of s_input) ------------------
 * Delta = self - prev = (0.5, -0.5, 0, 4); mu - prev = (1.5, 1, 0, 12). */

static void test_random_sign_flip_gradient_scale(void **state)
{
    (void) state;
    bn_rng_t rng, twin;
    bn_rng_seed(&rng, 9, BN_STREAM_ATTACK);
    bn_rng_seed(&twin, 9, BN_STREAM_ATTACK);
    bn_attack_opts_t o;
    bn_attack_input_t in = s_input(&rng);
    float out[4];
    bn_attack_opts_default(&o, BN_ATTACK_RANDOM_SIGN_FLIP);
    for (int t = 0; t < 3; t++) {                /* a fresh r every round */
        double r = 10.0 * bn_rng_normal(&twin);
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
        const double want[4] = { 0.5 + 0.5 * r, -1 - 0.5 * r, 2, 4 * r };
        s_assert_vec(out, want, 4, 1e-4 * BN_MAX(1.0, fabs(r)));
    }
    o.rsf_std = 0.0f;                            /* r = 0: the attacker's old model */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, s_prev, sizeof out);

    bn_attack_opts_default(&o, BN_ATTACK_GRADIENT_SCALE);
    o.gradient_scale = 3.0f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double gs[4] = { 2, -2.5, 2, 12 };
    s_assert_vec(out, gs, 4, 1e-6);
    o.gradient_scale = 1e10f;                    /* the paper's constant */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double gs10[4] = { 5e9, -5e9, 2, 4e10 };
    for (int j = 0; j < 4; j++)
        assert_true(fabs(out[j] - gs10[j]) <= 1e-6 * BN_MAX(1.0, fabs(gs10[j])));
}

static void test_model_negation(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_input_t in = s_input(NULL);
    float out[4];
    /* sum_h (h - prev) = 3 (mu - prev) = (4.5, 3, 0, 36); k = 2 */
    bn_attack_opts_default(&o, BN_ATTACK_MODEL_NEGATION);
    o.negation_scale = 2.0f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double mn[4] = { -8.5, -7, 2, -72 };
    s_assert_vec(out, mn, 4, 1e-5);
    o.negation_scale = 1e10f;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double mn10[4] = { -4.5e10, -3e10, 2, -3.6e11 };
    for (int j = 0; j < 4; j++)
        assert_true(fabs(out[j] - mn10[j]) <= 1e-6 * BN_MAX(1.0, fabs(mn10[j])));
}

static void s_assert_in(const float *v, const double *lo, const double *hi, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (!(v[j] >= lo[j] - 1e-6 && v[j] <= hi[j] + 1e-6)) {
            print_error("coordinate %zu: %.9g not in [%.9g, %.9g]\n", j, (double) v[j], lo[j], hi[j]);
            fail();
        }
}

static void test_ofom_paf(void **state)
{
    (void) state;
    bn_rng_t rng;
    bn_rng_seed(&rng, 3, BN_STREAM_ATTACK);
    bn_attack_opts_t o;
    bn_attack_input_t in = s_input(&rng);
    float out[4], again[4];
    /* honest min (1, 0, -3, 10), max (3, 0, 6, 16); the honest models moved
     * up from prev (1.5, 1, 0 (a tie counts up), 12): ofom goes below the
     * minimum, stretched by b = 2: [0.5, 1], 0, [-6, -3], [5, 10]. */
    bn_attack_opts_default(&o, BN_ATTACK_OFOM);
    for (int t = 0; t < 20; t++) {
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
        const double lo[4] = { 0.5, 0, -6, 5 }, hi[4] = { 1, 0, -3, 10 };
        s_assert_in(out, lo, hi, 4);
    }
    bn_rng_seed(&rng, 3, BN_STREAM_ATTACK);      /* reproducible from the attack stream */
    assert_int_equal(bn_attack_craft(&o, &in, again), BN_OK);
    bn_rng_seed(&rng, 3, BN_STREAM_ATTACK);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    assert_memory_equal(out, again, sizeof out);
    /* from prev (5, 5, 5, 20) the honest models moved down: above the
     * maximum, [3, 6], 0, [6, 12], [16, 32]; b = 3: [3, 9], 0, [6, 18], [16, 48] */
    static const float high_prev[4] = { 5, 5, 5, 20 };
    in.x_prev = high_prev;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double lo2[4] = { 3, 0, 6, 16 }, hi2[4] = { 6, 0, 12, 32 };
    s_assert_in(out, lo2, hi2, 4);
    o.fang_b = 3.0f;
    for (int t = 0; t < 20; t++) {
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
        const double hi3[4] = { 9, 0, 18, 48 };
        s_assert_in(out, lo2, hi3, 4);
    }
    /* a negative maximum moves toward 0 (w_max / b): one honest model (-4, ...) */
    static const float neg[4] = { -4, -4, -4, -4 };
    static const float *const one[1] = { neg };
    bn_attack_input_t in1 = in;
    in1.n_honest = 1;
    in1.honest = one;
    o.fang_b = 2.0f;
    assert_int_equal(bn_attack_craft(&o, &in1, out), BN_OK);   /* prev above: push up */
    const double lo4[4] = { -4, -4, -4, -4 }, hi4[4] = { -2, -2, -2, -2 };
    s_assert_in(out, lo4, hi4, 4);

    /* paf: mu (2, 0, 2, 12), sigma (sqrt(2/3), 0, sqrt 14, sqrt 8); up: [mu - 4 s, mu - 3 s] */
    in.x_prev = s_prev;
    bn_attack_opts_default(&o, BN_ATTACK_PAF);
    const double s0 = sqrt(2.0 / 3), s2 = sqrt(14.0), s3 = sqrt(8.0);
    for (int t = 0; t < 20; t++) {
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
        const double lo[4] = { 2 - 4 * s0, 0, 2 - 4 * s2, 12 - 4 * s3 };
        const double hi[4] = { 2 - 3 * s0, 0, 2 - 3 * s2, 12 - 3 * s3 };
        s_assert_in(out, lo, hi, 4);
    }
    in.x_prev = high_prev;                       /* down: [mu + 3 s, mu + 4 s] */
    for (int t = 0; t < 20; t++) {
        assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
        const double lo[4] = { 2 + 3 * s0, 0, 2 + 3 * s2, 12 + 3 * s3 };
        const double hi[4] = { 2 + 4 * s0, 0, 2 + 4 * s2, 12 + 4 * s3 };
        s_assert_in(out, lo, hi, 4);
    }
    in.rng = NULL;                               /* no noise source: refused */
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
}

static void test_normalized_mean_mimic2(void **state)
{
    (void) state;
    bn_attack_opts_t o;
    bn_attack_input_t in = s_input(NULL);
    float out[4];
    /* g = h - prev: (0.5, 1, -5, 10), (1.5, 1, 1, 10), (2.5, 1, 4, 16) with
     * norms sqrt 126.25, sqrt 104.25, sqrt 279.25; r = the median, sqrt 126.25 */
    bn_attack_opts_default(&o, BN_ATTACK_NORMALIZED_MEAN);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double n0 = sqrt(126.25), n1 = sqrt(104.25), n2 = sqrt(279.25), r = n0;
    const double g[3][4] = { { 0.5, 1, -5, 10 }, { 1.5, 1, 1, 10 }, { 2.5, 1, 4, 16 } };
    double want[4];
    for (int j = 0; j < 4; j++)
        want[j] = s_prev[j] - r * (g[0][j] / n0 + g[1][j] / n1 + g[2][j] / n2);
    s_assert_vec(out, want, 4, 1e-5);
    /* every honest model at prev: nothing to normalise, prev itself */
    static const float *const at_prev[3] = { s_prev, s_prev, s_prev };
    bn_attack_input_t same = in;
    same.honest = at_prev;
    assert_int_equal(bn_attack_craft(&o, &same, out), BN_OK);
    assert_memory_equal(out, s_prev, sizeof out);

    /* mimic2: seed a = lowest id 2 = (2, 0, 3, 10); farthest from it is
     * (3, 0, 6, 16) (sqrt 46 > sqrt 37); (1, 0, -3, 10) is sqrt 37 from a and
     * 11 from c, so a's cluster is {(1, 0, -3, 10), (2, 0, 3, 10)}: mean (1.5, 0, 0, 10) */
    bn_attack_opts_default(&o, BN_ATTACK_MIMIC2);
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_OK);
    const double m2[4] = { 1.5, 0, 0, 10 };
    s_assert_vec(out, m2, 4, 1e-6);
    in.honest_id = NULL;
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
}

static void test_mixed(void **state)
{
    (void) state;
    char err[256];
    const uint64_t seed = 1;
    const uint32_t n = 10, b = 3;
    bool byz[10];
    assert_int_equal(bn_roles_byzantine(seed, n, b, byz), BN_OK);
    uint32_t ids[3], k = 0, honest_id = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (byz[i])
            ids[k++] = i;
        else
            honest_id = i;
    }
    assert_int_equal(k, 3);
    bn_attack_opts_t o;
    /* by rank: sign-flip, gaussian, sign-flip */
    const bn_attack_kind_t by_rank[3] = { BN_ATTACK_SIGN_FLIP, BN_ATTACK_GAUSSIAN, BN_ATTACK_SIGN_FLIP };
    for (uint32_t r = 0; r < 3; r++) {
        bn_attack_opts_default(&o, BN_ATTACK_MIXED);
        snprintf(o.mix, sizeof o.mix, "sign-flip,gaussian");
        assert_int_equal(bn_attack_resolve(&o, ids[r], seed, n, b, err, sizeof err), BN_OK);
        assert_int_equal(o.kind, by_rank[r]);
    }
    /* an ID entry wins, and the ranks of the others skip it */
    char mix[64];
    snprintf(mix, sizeof mix, "%u:echo,label-flip,crash", ids[0]);
    const bn_attack_kind_t named[3] = { BN_ATTACK_ECHO, BN_ATTACK_LABEL_FLIP, BN_ATTACK_CRASH };
    for (uint32_t r = 0; r < 3; r++) {
        bn_attack_opts_default(&o, BN_ATTACK_MIXED);
        snprintf(o.mix, sizeof o.mix, "%s", mix);
        assert_int_equal(bn_attack_resolve(&o, ids[r], seed, n, b, err, sizeof err), BN_OK);
        assert_int_equal(o.kind, named[r]);
    }
    /* outside the Byzantine set: its id picks the entry */
    bn_attack_opts_default(&o, BN_ATTACK_MIXED);
    snprintf(o.mix, sizeof o.mix, "ipm,dlie");
    assert_int_equal(bn_attack_resolve(&o, honest_id, seed, n, b, err, sizeof err), BN_OK);
    assert_int_equal(o.kind, honest_id % 2 ? BN_ATTACK_DLIE : BN_ATTACK_IPM);
    /* only ID entries, none for this node */
    bn_attack_opts_default(&o, BN_ATTACK_MIXED);
    snprintf(o.mix, sizeof o.mix, "%u:echo", ids[0]);
    assert_int_equal(bn_attack_resolve(&o, ids[1], seed, n, b, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "no attack for node"));
    /* other kinds are left alone */
    bn_attack_opts_default(&o, BN_ATTACK_DRIFT);
    snprintf(o.mix, sizeof o.mix, "bogus");
    assert_int_equal(bn_attack_resolve(&o, ids[0], seed, n, b, err, sizeof err), BN_OK);
    assert_int_equal(o.kind, BN_ATTACK_DRIFT);
    /* the checker */
    const char *good[] = { "echo", "3:echo", "sign-flip,7:label-flip,gaussian", "sign_flip" };
    for (size_t i = 0; i < BN_ARRAY_LEN(good); i++)
        assert_int_equal(bn_attack_mix_check(good[i], err, sizeof err), BN_OK);
    const char *bad[] = { "", "none", "mixed", "echo,,gaussian", "echo,", ",echo", "3:", ":echo",
                          "x:echo", "-1:echo", "3:bogus", "3:none", "99999999999:echo", "3:4:echo" };
    for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++) {
        if (bn_attack_mix_check(bad[i], err, sizeof err) != BN_EARG)
            fail_msg("attack-mix '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "attack-mix"));
    }
    assert_int_equal(bn_attack_mix_check(NULL, err, sizeof err), BN_EARG);
    /* an unresolved mixed attacker crafts nothing useful */
    bn_attack_opts_default(&o, BN_ATTACK_MIXED);
    bn_attack_input_t in = s_input(NULL);
    float out[4];
    assert_int_equal(bn_attack_craft(&o, &in, out), BN_EARG);
    assert_memory_equal(out, s_self, sizeof out);
}

/* The round's pair-distance cache (bn_attack_input_t.pair_dist), shared by
 * the crafts for every victim as the adversary does, gives minmax and minsum
 * the same vectors bit for bit as computing each neighbourhood's distances
 * afresh. */
static void test_pair_cache_is_exact(void **state)
{
    (void) state;
    enum { K = 12, DIM = 257 };
    static float xs[K][DIM];
    const float *ptr[K];
    uint32_t ids[K];
    bn_rng_t rng;
    bn_rng_seed(&rng, 99, 0);
    for (uint32_t i = 0; i < K; i++) {
        for (uint32_t j = 0; j < DIM; j++)
            xs[i][j] = (float) (bn_rng_uniform(&rng) * 2.0 - 1.0);
        ptr[i] = xs[i];
        ids[i] = 10 + i;
    }
    double cache[K * K];
    bn_attack_pair_cache_reset(cache, K);
    assert_true(isnan(cache[0]) && isnan(cache[K * K - 1]));
    const bn_attack_kind_t kinds[2] = { BN_ATTACK_MINMAX, BN_ATTACK_MINSUM };
    for (int t = 0; t < 2; t++) {
        bn_attack_opts_t o;
        bn_attack_opts_default(&o, kinds[t]);
        for (uint32_t v = 0; v < K; v++) {
            bn_attack_input_t in = { .dim = DIM, .n_honest = K, .honest = ptr, .honest_id = ids,
                                     .x_prev = xs[v], .x_self = xs[v], .victim = ids[v],
                                     .victim_x = xs[v] };
            float plain[DIM], cached[DIM];
            assert_int_equal(bn_attack_craft(&o, &in, plain), BN_OK);
            in.pair_dist = cache;
            assert_int_equal(bn_attack_craft(&o, &in, cached), BN_OK);
            assert_memory_equal(plain, cached, sizeof plain);
        }
    }
    uint32_t filled = 0;
    for (uint32_t i = 0; i < K * K; i++)
        filled += !isnan(cache[i]);
    assert_int_equal(filled, K * K - K);      /* every pair, not the diagonal */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_parse),
        cmocka_unit_test(test_defaults_and_predicates),
        cmocka_unit_test(test_dlie),
        cmocka_unit_test(test_reverse_ipm_mimic_constant_nan),
        cmocka_unit_test(test_sign_flip_label_flip_none_crash),
        cmocka_unit_test(test_random_has_mean_norm),
        cmocka_unit_test(test_gaussian_moments),
        cmocka_unit_test(test_alie_vector),
        cmocka_unit_test(test_no_honest_models),
        cmocka_unit_test(test_large_dim_statistics),
        cmocka_unit_test(test_alie_z_values),
        cmocka_unit_test(test_norm_quantile_accuracy),
        cmocka_unit_test(test_echo_drift),
        cmocka_unit_test(test_dissensus),
        cmocka_unit_test(test_victim_neighbourhood_from_graph),
        cmocka_unit_test(test_minmax_minsum),
        cmocka_unit_test(test_pair_cache_is_exact),
        cmocka_unit_test(test_per_victim_without_victim_model),
        cmocka_unit_test(test_random_sign_flip_gradient_scale),
        cmocka_unit_test(test_model_negation),
        cmocka_unit_test(test_ofom_paf),
        cmocka_unit_test(test_normalized_mean_mimic2),
        cmocka_unit_test(test_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
