/*  test_heldout.c -- the held-out auxiliary set of a rule with
 *  BN_RULE_F_HELDOUT (bygars): bn_dataset_split, and bn_node_new moving
 *  min(--batch, 512, shard / 2) images of the node's own shard, chosen by a
 *  seeded shuffle, out of its training set into nd->aux.
 *
 *  The node trains on its own IDX pair of S_N images whose first two pixels
 *  spell the image's index, so the test can tell which images went where.
 *  bn_node_oracle_batch must then index aux only (all of it), and the
 *  training shard for the other oracle rules.  No message is sent:
 *  bn_node_new only binds its endpoint.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"
#include "node_setup.h"
#include "node_state.h"
#include "options.h"
#include "swarmfile.h"
#include "fixture.h"

#define S_N 100

static char s_dir[128];

static void s_be32(FILE *f, uint32_t v)
{
    uint8_t b[4] = { (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };
    fwrite(b, 1, 4, f);
}

/* n images: pixel 0 = i % 256, pixel 1 = i / 256, label i % 10. */
static void s_write_idx(const char *dir, const char *name_img, const char *name_lab, uint32_t n)
{
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/%s", dir, name_img);
    snprintf(b, sizeof b, "%s/%s", dir, name_lab);
    FILE *fi = fopen(a, "wb"), *fl = fopen(b, "wb");
    assert_non_null(fi);
    assert_non_null(fl);
    s_be32(fi, 0x00000803);
    s_be32(fi, n);
    s_be32(fi, 28);
    s_be32(fi, 28);
    s_be32(fl, 0x00000801);
    s_be32(fl, n);
    for (uint32_t i = 0; i < n; i++) {
        fputc((int) (i % 10), fl);
        fputc((int) (i % 256), fi);
        fputc((int) (i / 256), fi);
        for (uint32_t p = 2; p < 784; p++)
            fputc((int) ((p * 7 + i) % 251), fi);
    }
    fclose(fi);
    fclose(fl);
}

static uint32_t s_id_of(const bn_dataset_t *ds, uint32_t k)
{
    const uint8_t *img = ds->images + (size_t) k * 784;
    return img[0] + 256u * img[1];
}

static int s_setup(void **state)
{
    (void) state;
    if (bn_fx_tmpdir(s_dir, sizeof s_dir, "heldout") != 0)
        return -1;
    s_write_idx(s_dir, "own-images", "own-labels", S_N);
    s_write_idx(s_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 20);
    char p[256];
    snprintf(p, sizeof p, "%s/swarm.txt", s_dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fprintf(f, "swarm heldout\nmonitor ipc://%s/m\nnode 0 ipc://%s/0\nnode 1 ipc://%s/1\n",
            s_dir, s_dir, s_dir);
    fclose(f);
    return 0;
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

/* A node 0 of the 2-node swarm with rule, seed and batch; its aux ids into
 * aux_ids (sorted by position), and the train/aux sizes. */
static void s_node(const char *rule, const char *seed, const char *batch, uint32_t *train_n,
                   uint32_t *aux_n, uint32_t *aux_ids)
{
    char swarm[200], imgs[200], labs[200];
    snprintf(swarm, sizeof swarm, "%s/swarm.txt", s_dir);
    snprintf(imgs, sizeof imgs, "%s/own-images", s_dir);
    snprintf(labs, sizeof labs, "%s/own-labels", s_dir);
    char *argv[] = { "node", "--swarm", swarm, "--id", "0", "--train-images", imgs,
                     "--train-labels", labs, "--data", s_dir, "--rule", (char *) rule,
                     "--seed", (char *) seed, "--batch", (char *) batch, "--eval-subset", "10" };
    int argc = (int) (sizeof argv / sizeof *argv);
    bn_swarm_t sw;
    char err[512] = "";
    assert_int_equal(bn_swarm_load(&sw, swarm, err, sizeof err), BN_OK);
    bn_options_t o;
    int rc = bn_options_load(&o, &sw, argc, argv, 1, err, sizeof err);
    if (rc != BN_OK)
        fail_msg("options: %s", err);
    bn_swarm_free(&sw);
    volatile sig_atomic_t stop = 0;
    bn_node_t *nd = bn_node_new(&o, &stop, err, sizeof err);
    if (!nd)
        fail_msg("bn_node_new: %s", err);
    *train_n = nd->train.n;
    *aux_n = nd->aux.n;
    /* every image of the shard exactly once, in train or in aux */
    uint8_t seen[S_N] = { 0 };
    for (uint32_t k = 0; k < nd->train.n; k++)
        seen[s_id_of(&nd->train, k)]++;
    for (uint32_t k = 0; k < nd->aux.n; k++) {
        aux_ids[k] = s_id_of(&nd->aux, k);
        assert_int_equal(nd->aux.labels[k], aux_ids[k] % 10);
        seen[aux_ids[k]]++;
    }
    for (uint32_t i = 0; i < S_N; i++)
        assert_int_equal(seen[i], 1);
    /* the oracle's batch: all of aux when there is one, never a training image */
    uint32_t oidx[512], on = 0;
    const bn_dataset_t *ods = bn_node_oracle_batch(nd, oidx, &on);
    if (nd->aux.n) {
        assert_ptr_equal(ods, &nd->aux);
        assert_int_equal(on, nd->aux.n);
    } else {
        assert_ptr_equal(ods, &nd->train);
        assert_int_equal(on, BN_MIN(nd->opt.batch, nd->train.n));
    }
    for (uint32_t k = 0; k < on; k++)
        assert_true(oidx[k] < ods->n);
    bn_node_destroy(&nd);
}

static void test_split(void **state)
{
    (void) state;
    bn_dataset_t ds = { 0 }, out = { 0 };
    char imgs[200], labs[200], err[256];
    snprintf(imgs, sizeof imgs, "%s/own-images", s_dir);
    snprintf(labs, sizeof labs, "%s/own-labels", s_dir);
    assert_int_equal(bn_dataset_load(&ds, imgs, labs, NULL, 0, err, sizeof err), BN_OK);
    uint32_t dup[2] = { 3, 3 }, big[1] = { S_N }, idx[3] = { 42, 7, 99 };
    assert_int_equal(bn_dataset_split(&ds, dup, 2, &out), BN_EARG);
    assert_int_equal(bn_dataset_split(&ds, big, 1, &out), BN_EARG);
    assert_int_equal(bn_dataset_split(&ds, idx, 0, &out), BN_EARG);
    assert_int_equal(ds.n, S_N);                       /* unchanged by the refusals */
    assert_null(out.images);
    assert_int_equal(bn_dataset_split(&ds, idx, 3, &out), BN_OK);
    assert_int_equal(out.n, 3);
    assert_int_equal(s_id_of(&out, 0), 42);            /* in the order given */
    assert_int_equal(s_id_of(&out, 1), 7);
    assert_int_equal(s_id_of(&out, 2), 99);
    assert_int_equal(out.labels[1], 7);
    assert_int_equal(ds.n, S_N - 3);
    uint32_t prev = 0;
    for (uint32_t k = 0; k < ds.n; k++) {              /* the rest, in order, none taken */
        uint32_t id = s_id_of(&ds, k);
        assert_true(k == 0 || id > prev);
        assert_true(id != 42 && id != 7 && id != 99);
        assert_int_equal(ds.labels[k], id % 10);
        prev = id;
    }
    bn_dataset_free(&out);
    bn_dataset_free(&ds);
}

static void test_bygars_holds_out(void **state)
{
    (void) state;
    uint32_t tn, an, a1[S_N], a2[S_N], a3[S_N];
    s_node("bygars", "1", "10", &tn, &an, a1);
    assert_int_equal(an, 10);                          /* min(batch, 512, n / 2) */
    assert_int_equal(tn, S_N - 10);
    s_node("bygars", "1", "10", &tn, &an, a2);          /* deterministic given the seed */
    assert_memory_equal(a1, a2, 10 * sizeof *a1);
    s_node("bygars", "2", "10", &tn, &an, a3);          /* another seed, other images */
    assert_int_equal(an, 10);
    assert_true(memcmp(a1, a3, 10 * sizeof *a1) != 0);
    int first10 = 1;                                   /* a shuffle, not the first images */
    for (uint32_t k = 0; k < 10; k++)
        first10 &= a1[k] < 10;
    assert_false(first10);
    s_node("bygars", "1", "500", &tn, &an, a3);         /* capped at half the shard */
    assert_int_equal(an, S_N / 2);
    assert_int_equal(tn, S_N / 2);
}

static void test_others_train_on_all(void **state)
{
    (void) state;
    uint32_t tn, an, ids[S_N];
    const char *rules[] = { "bygars++", "mozi", "mean", "similarity" };
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        s_node(rules[r], "1", "10", &tn, &an, ids);
        assert_int_equal(an, 0);
        assert_int_equal(tn, S_N);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_bygars_holds_out),
        cmocka_unit_test(test_others_train_on_all),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
