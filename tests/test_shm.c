/*  test_shm.c -- the same-host ring (shm.h): a slot read back whole, a torn
 *  copy and a stale slot dropped, a truncated, missing or non-regular file
 *  dropped without a crash, an accepted copy that later writes cannot
 *  change, a restarted owner's new ring, a dead node's ring and its
 *  reference FIFO swept by the next node to start (and nothing else), and a MODEL_SHM resolved into the
 *  MODEL the inbox admits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm.h"

#define S_DIM 1000u
#define S_LEN (S_DIM * 4u)

typedef struct {
    char dir[64];
    bn_swarm_t swarm;
    bn_swarm_peer_t nodes[2];
    bn_shm_t *owner, *reader;   /* node 0 writes, node 1 reads */
    float data[S_DIM];
} s_fx_t;

static int s_setup(void **state)
{
    s_fx_t *f = calloc(1, sizeof *f);
    /* A tmpfs of our own: the rings go next to the sockets, and the sweep
     * test sees only its own files (/tmp is often not a tmpfs). */
    snprintf(f->dir, sizeof f->dir, "%s/bn-test-shm.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    f->swarm.n = 2;
    f->swarm.swarm_id = 0x1234abcdull;
    f->swarm.nodes = f->nodes;
    for (int i = 0; i < 2; i++)
        snprintf(f->nodes[i].endpoint, sizeof f->nodes[i].endpoint, "ipc://%s/%d", f->dir, i);
    char err[256];
    f->owner = bn_shm_new(&f->swarm, 0, S_LEN, true, err, sizeof err);
    f->reader = bn_shm_new(&f->swarm, 1, S_LEN, false, err, sizeof err);
    assert_non_null(f->owner);
    assert_non_null(f->reader);
    assert_true(bn_shm_publishing(f->owner));
    assert_false(bn_shm_publishing(f->reader));
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *f = *state;
    char path[BN_SHM_PATH_MAX];
    assert_int_equal(bn_shm_path(f->nodes[0].endpoint, f->swarm.swarm_id, 0, path, sizeof path), BN_OK);
    bn_shm_destroy(&f->owner);
    bn_shm_destroy(&f->reader);
    assert_int_equal(access(path, F_OK), -1);   /* the owner removed its ring */
    rmdir(f->dir);
    free(f);
    return 0;
}

static bn_wire_header_t s_header(uint64_t round)
{
    bn_wire_header_t h = { BN_WIRE_VERSION, BN_MSG_MODEL_SHM, 0x1234abcdull, 0, 0, round, 7, 9,
                           BN_DTYPE_F32, S_DIM, 0 };
    return h;
}

static void s_publish(s_fx_t *f, uint64_t round, float value, bn_shm_ref_t *ref)
{
    for (uint32_t i = 0; i < S_DIM; i++)
        f->data[i] = value + (float) i;
    assert_int_equal(bn_shm_publish(f->owner, 0, round, f->data, ref), BN_OK);
}

static bool s_holds(const bn_buf_t *b, float value)
{
    const float *x = bn_buf_data(b);
    for (uint32_t i = 0; i < S_DIM; i++)
        if (x[i] != value + (float) i)
            return false;
    return bn_buf_size(b) == S_LEN;
}

static void test_roundtrip(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t ref, back;
    s_publish(f, 3, 1.5f, &ref);
    uint8_t rb[BN_SHM_REF_LEN];
    bn_shm_ref_encode(&ref, rb);
    assert_true(bn_shm_ref_decode(rb, sizeof rb, &back));
    assert_false(bn_shm_ref_decode(rb, sizeof rb - 1, &back));
    assert_memory_equal(&ref, &back, sizeof ref);
    bn_wire_header_t h = s_header(3);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_NONE);
    assert_non_null(b);
    assert_true(s_holds(b, 1.5f));
    bn_buf_release(&b);
    /* the header must be the slot's: another round is stale */
    h.round = 4;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_null(b);
    assert_int_equal(bn_shm_stats(f->reader)->received, 1);
    assert_int_equal(bn_shm_stats(f->reader)->stale, 1);
    assert_int_equal(bn_shm_stats(f->owner)->published, 1);
}

/* The hook overwrites the slot while the reader holds its copy: the
 * sequence number changed, so the copy is torn and dropped. */
static s_fx_t *s_hook_fx;
static void s_overwrite(void *ctx)
{
    (void) ctx;
    bn_shm_ref_t r;
    for (int k = 0; k < BN_SHM_SLOTS; k++)
        s_publish(s_hook_fx, 100 + (uint64_t) k, 9.0f, &r);
}

static void test_torn_copy_dropped(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t ref;
    s_publish(f, 5, 2.0f, &ref);
    s_hook_fx = f;
    bn_shm_set_copy_hook(f->reader, s_overwrite, NULL);
    bn_wire_header_t h = s_header(5);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_null(b);
    assert_int_equal(bn_shm_stats(f->reader)->torn, 1);
    assert_int_equal(bn_shm_stats(f->reader)->received, 0);
    bn_shm_set_copy_hook(f->reader, NULL, NULL);
}

/* A slot caught mid-write (odd sequence) is torn; one written again since
 * the reference was sent is stale. */
static void test_odd_and_stale_sequence(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t ref, later;
    s_publish(f, 0, 1.0f, &ref);
    for (int k = 1; k <= BN_SHM_SLOTS; k++)
        s_publish(f, (uint64_t) k, 3.0f, &later);    /* slot of round 0 reused by round R */
    bn_wire_header_t h = s_header(0);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_int_equal(bn_shm_stats(f->reader)->stale, 1);
    /* the newest one still reads */
    h.round = BN_SHM_SLOTS;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &later, &b), BN_DROP_NONE);
    assert_true(s_holds(b, 3.0f));
    bn_buf_release(&b);
    /* make the slot's sequence odd, as while its owner writes it */
    char path[BN_SHM_PATH_MAX];
    bn_shm_path(f->nodes[0].endpoint, f->swarm.swarm_id, 0, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint64_t odd = later.seq + 1;
    off_t off = 4096 + (off_t) later.slot * (off_t) ((64 + S_LEN + 4095) / 4096 * 4096);
    assert_int_equal(pwrite(fd, &odd, sizeof odd, off), (ssize_t) sizeof odd);
    close(fd);
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &later, &b), BN_DROP_SHM);
    assert_int_equal(bn_shm_stats(f->reader)->torn, 1);
    /* a reference with an odd or a zero sequence, a slot out of range, a
     * wrong length: refused before any read */
    bn_shm_ref_t bad = later;
    bad.seq = 3;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &bad, &b), BN_DROP_SHM);
    bad = later;
    bad.slot = BN_SHM_SLOTS;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &bad, &b), BN_DROP_SHM);
    bad = later;
    bad.len = S_LEN - 4;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &bad, &b), BN_DROP_DIM);
    assert_null(b);
}

/* The owner truncates its ring after the reader opened it: pread comes back
 * short and the read is a counted drop (an mmap'd reader would SIGBUS). */
static void test_truncated_file_dropped(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t ref;
    s_publish(f, 1, 4.0f, &ref);
    bn_wire_header_t h = s_header(1);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_NONE);
    bn_buf_release(&b);
    char path[BN_SHM_PATH_MAX];
    bn_shm_path(f->nodes[0].endpoint, f->swarm.swarm_id, 0, path, sizeof path);
    assert_int_equal(truncate(path, 4096 + 100), 0);
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_null(b);
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_int_equal(bn_shm_stats(f->reader)->unreadable, 2);
    /* a file that is not there, or a FIFO in its place: dropped, never blocks */
    unlink(path);
    ref.gen ^= 1;                               /* forces a reopen */
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_SHM);
    assert_int_equal(bn_shm_stats(f->reader)->unreadable, 4);
    assert_null(b);
}

/* What the owner writes after the copy was taken does not reach it. */
static void test_accepted_copy_is_ours(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t ref, r;
    s_publish(f, 2, 5.0f, &ref);
    bn_wire_header_t h = s_header(2);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_NONE);
    for (int k = 0; k < 2 * BN_SHM_SLOTS; k++)
        s_publish(f, 10 + (uint64_t) k, -7.0f, &r);
    assert_true(s_holds(b, 5.0f));
    bn_buf_release(&b);
}

/* A restarted owner makes a new ring (new generation): the reader's cached
 * descriptor of the old one is replaced; references to the old one are stale. */
static void test_restarted_owner(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t old, ref;
    s_publish(f, 1, 1.0f, &old);
    bn_wire_header_t h = s_header(1);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &old, &b), BN_DROP_NONE);
    bn_buf_release(&b);
    bn_shm_destroy(&f->owner);
    char err[256];
    f->owner = bn_shm_new(&f->swarm, 0, S_LEN, true, err, sizeof err);
    assert_true(bn_shm_publishing(f->owner));
    s_publish(f, 1, 6.0f, &ref);
    assert_true(ref.gen != old.gen);
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_NONE);
    assert_true(s_holds(b, 6.0f));
    bn_buf_release(&b);
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &old, &b), BN_DROP_SHM);
    assert_int_equal(bn_shm_stats(f->reader)->stale, 1);
}

/* A node killed without cleaning up leaves its ring; the next node to create
 * one in that directory removes it, since nobody holds its lock.  A live
 * owner's ring (locked, here by this very process through another open file),
 * a file that only looks like a ring and a ring of another version stay. */
static void test_dead_rings_swept(void **state)
{
    s_fx_t *f = *state;
    bn_swarm_t other = f->swarm;
    other.swarm_id = 0x5555ull;                 /* another swarm, same directory */
    char dead[BN_SHM_PATH_MAX], live[BN_SHM_PATH_MAX], fake[BN_SHM_PATH_MAX + 32],
         old[BN_SHM_PATH_MAX + 32];
    assert_int_equal(bn_shm_path(f->nodes[0].endpoint, other.swarm_id, 0, dead, sizeof dead), BN_OK);
    assert_int_equal(bn_shm_path(f->nodes[0].endpoint, f->swarm.swarm_id, 0, live, sizeof live), BN_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {                             /* a node that dies without cleaning up */
        char err[256];
        bn_shm_t *s = bn_shm_new(&other, 0, S_LEN, true, err, sizeof err);
        _exit(s && bn_shm_publishing(s) ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(access(dead, F_OK), 0);
    snprintf(fake, sizeof fake, "%s/byznode-not-a-ring.ring", f->dir);
    snprintf(old, sizeof old, "%s/byznode-0000000000005555-9-00000000.ring", f->dir);
    FILE *fp = fopen(fake, "w");
    assert_non_null(fp);
    fputs("hello", fp);
    fclose(fp);
    /* a version-1 ring: the dead child's header with the version put back */
    int in = open(dead, O_RDONLY), out = open(old, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(in >= 0 && out >= 0);
    uint8_t hdr[64];
    assert_int_equal(read(in, hdr, sizeof hdr), (ssize_t) sizeof hdr);
    uint32_t v1 = 1;
    memcpy(hdr + 8, &v1, 4);                    /* magic u64, then version u32 */
    assert_int_equal(write(out, hdr, sizeof hdr), (ssize_t) sizeof hdr);
    close(in);
    close(out);

    /* the dead node's reference FIFO (refpipe.h), a live ring's, and a
     * regular file named like one beside the fake ring */
    char dead_fifo[BN_SHM_PATH_MAX], live_fifo[BN_SHM_PATH_MAX], old_refs[BN_SHM_PATH_MAX + 32];
    snprintf(dead_fifo, sizeof dead_fifo, "%.*s.refs", (int) strlen(dead) - 5, dead);
    snprintf(live_fifo, sizeof live_fifo, "%.*s.refs", (int) strlen(live) - 5, live);
    snprintf(old_refs, sizeof old_refs, "%.*s.refs", (int) strlen(old) - 5, old);
    assert_int_equal(mkfifo(dead_fifo, 0600), 0);
    assert_int_equal(mkfifo(live_fifo, 0600), 0);
    assert_int_equal(mkfifo(old_refs, 0600), 0);

    char err[256];
    bn_shm_t *next = bn_shm_new(&other, 1, S_LEN, true, err, sizeof err);
    assert_non_null(next);
    assert_true(bn_shm_publishing(next));
    assert_int_equal(access(dead, F_OK), -1);   /* swept */
    assert_int_equal(access(dead_fifo, F_OK), -1);  /* with its FIFO */
    assert_int_equal(access(live_fifo, F_OK), 0);
    assert_int_equal(access(old_refs, F_OK), 0);    /* its ring was not swept */
    unlink(live_fifo);
    unlink(old_refs);
    assert_int_equal(access(live, F_OK), 0);    /* the fixture's owner is alive */
    assert_int_equal(access(fake, F_OK), 0);
    assert_int_equal(access(old, F_OK), 0);
    /* the live ring still works */
    bn_shm_ref_t ref;
    s_publish(f, 3, 2.0f, &ref);
    bn_wire_header_t h = s_header(3);
    bn_buf_t *b = NULL;
    assert_int_equal(bn_shm_read(f->reader, 0, &h, &ref, &b), BN_DROP_NONE);
    assert_true(s_holds(b, 2.0f));
    bn_buf_release(&b);
    bn_shm_destroy(&next);
    unlink(fake);
    unlink(old);
}

/* A MODEL_SHM message becomes the MODEL it names; anything else passes. */
static void test_resolve(void **state)
{
    s_fx_t *f = *state;
    bn_shm_ref_t ref;
    s_publish(f, 2, 8.0f, &ref);
    bn_wire_header_t h = s_header(2);
    uint8_t hb[BN_WIRE_HEADER_MAX], rb[BN_SHM_REF_LEN];
    size_t hlen;
    assert_int_equal(bn_wire_encode(&h, hb, sizeof hb, &hlen), BN_OK);
    bn_shm_ref_encode(&ref, rb);
    const void *frames[2] = { hb, rb };
    size_t lens[2] = { hlen, sizeof rb };
    bn_msg_t *msg = bn_msg_new(2, frames, lens, BN_AUTH_NONE, false), *out = NULL;
    uint32_t blame;
    assert_int_equal(bn_shm_resolve(f->reader, msg, &out, &blame), BN_DROP_NONE);
    assert_non_null(out);
    size_t len;
    const void *mh = bn_msg_frame(out, 0, &len);
    bn_wire_header_t got;
    assert_int_equal(bn_wire_decode(mh, len, &got), BN_DROP_NONE);
    h.kind = BN_MSG_MODEL;
    /* field by field: the struct's tail padding is not part of the value */
    assert_int_equal(got.version, h.version);
    assert_int_equal(got.kind, h.kind);
    assert_int_equal(got.swarm_id, h.swarm_id);
    assert_int_equal(got.sender, h.sender);
    assert_int_equal(got.epoch, h.epoch);
    assert_int_equal(got.round, h.round);
    assert_int_equal(got.topology, h.topology);
    assert_int_equal(got.config, h.config);
    assert_int_equal(got.dtype, h.dtype);
    assert_int_equal(got.dim, h.dim);
    assert_int_equal(got.origin, h.origin);
    bn_buf_t *p = bn_msg_take(out, 1);
    assert_true(s_holds(p, 8.0f));
    bn_buf_release(&p);
    bn_msg_destroy(&out);
    bn_msg_destroy(&msg);
    /* a plain MODEL passes untouched */
    h.kind = BN_MSG_MODEL;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    lens[0] = hlen;
    msg = bn_msg_new(2, frames, lens, BN_AUTH_NONE, false);
    assert_int_equal(bn_shm_resolve(f->reader, msg, &out, &blame), BN_DROP_NONE);
    assert_null(out);
    bn_msg_destroy(&msg);
    /* a MODEL_SHM with a malformed reference is dropped against its sender */
    h.kind = BN_MSG_MODEL_SHM;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    lens[0] = hlen;
    lens[1] = 5;
    msg = bn_msg_new(2, frames, lens, BN_AUTH_NONE, false);
    assert_int_equal(bn_shm_resolve(f->reader, msg, &out, &blame), BN_DROP_SHM);
    assert_int_equal(blame, 0);
    assert_null(out);
    bn_msg_destroy(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_torn_copy_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_odd_and_stale_sequence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_accepted_copy_is_ours, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restarted_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_dead_rings_swept, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_resolve, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
