/*  test_checkpoint.c -- checkpoints: a round trip; refused when written by
 *  another configuration or beyond the run; corrupt, short and foreign files
 *  refused without touching the caller's buffers; a failed write keeps the
 *  previous checkpoint; the resumed node's jsonl trimmed to the checkpoint;
 *  the last epoch of a jsonl read from its tail alone, and the trim, in
 *  bounded memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fixture.h"

#define DIM 37
#define ORDER 11
#define FP 0x1234abcd5678ef01ULL

static char s_dir[512];

static int s_setup(void **state)
{
    (void) state;
    return bn_fx_tmpdir(s_dir, sizeof s_dir, "ck");
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

typedef struct {
    float x[DIM], v[DIM];
    uint32_t order[ORDER];
    bn_checkpoint_t ck;
} s_state_t;

static void s_fill(s_state_t *s, float base, uint32_t epoch)
{
    for (int i = 0; i < DIM; i++) {
        s->x[i] = base + (float) i;
        s->v[i] = -base - (float) i;
    }
    for (int i = 0; i < ORDER; i++)
        s->order[i] = (uint32_t) ((i * 7) % ORDER);
    memset(&s->ck, 0, sizeof s->ck);
    s->ck.epoch = epoch;
    s->ck.round = 1000 + epoch;
    s->ck.dim = DIM;
    s->ck.x = s->x;
    s->ck.velocity = s->v;
    s->ck.sgd_started = true;
    bn_rng_seed(&s->ck.batch_rng, 5, 1);
    bn_rng_seed(&s->ck.attack_rng, 6, 2);
    s->ck.order = s->order;
    s->ck.order_n = ORDER;
    s->ck.order_pos = 3;
    s->ck.config_fp = FP;
}

/* An empty receiver: what a node passes to load. */
static void s_blank(s_state_t *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < DIM; i++)
        s->x[i] = s->v[i] = 99.0f;
    s->ck.dim = DIM;
    s->ck.x = s->x;
    s->ck.velocity = s->v;
    s->ck.order = s->order;
    s->ck.order_n = ORDER;
}

static void s_path(char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "%s/checkpoint-4.bin%s", s_dir, suffix);
}

static void test_round_trip(void **state)
{
    (void) state;
    s_state_t a, b;
    char err[512] = "";
    s_fill(&a, 1.5f, 2);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_OK);
    assert_memory_equal(a.x, b.x, sizeof a.x);
    assert_memory_equal(a.v, b.v, sizeof a.v);
    assert_memory_equal(a.order, b.order, sizeof a.order);
    assert_int_equal(b.ck.epoch, 2);
    assert_int_equal(b.ck.round, 1002);
    assert_int_equal(b.ck.order_pos, 3);
    assert_true(b.ck.sgd_started);
    assert_true(b.ck.config_fp == FP);
    assert_int_equal(bn_rng_next(&b.ck.batch_rng), bn_rng_next(&a.ck.batch_rng));
    char tmp[600];
    s_path(tmp, sizeof tmp, ".tmp");
    assert_int_equal(access(tmp, F_OK), -1);   /* no temporary left */
}

/* The findings of issue 8: a checkpoint of another --batch/--seed was
 * accepted (round 1000 with R = 2000); one from epoch 50 of a 2-epoch run
 * "resumed" and did nothing. */
static void test_refused_for_another_run(void **state)
{
    (void) state;
    s_state_t a, b;
    char err[512] = "";
    s_fill(&a, 2.0f, 3);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);

    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP ^ 1, 5, &b.ck, err, sizeof err), BN_EMISMATCH);
    assert_non_null(strstr(err, "another configuration"));
    assert_true(b.x[0] == 99.0f && b.ck.epoch == 0);        /* untouched */

    s_fill(&a, 2.0f, 50);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 2, &b.ck, err, sizeof err), BN_EMISMATCH);
    assert_non_null(strstr(err, "at epoch 50, beyond this run's 2 epochs"));
    assert_true(b.x[0] == 99.0f);

    /* epoch == epochs: a finished node (loads; the caller does nothing) */
    s_fill(&a, 2.0f, 5);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_OK);
    assert_int_equal(b.ck.epoch, 5);
}

static void test_corrupt_short_foreign(void **state)
{
    (void) state;
    s_state_t a, b;
    char err[512] = "", path[600];
    s_fill(&a, 3.0f, 1);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    s_path(path, sizeof path, "");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    /* one flipped byte in the model */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 150, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 150, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, "checksum"));
    assert_true(b.x[0] == 99.0f);

    /* truncated */
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    assert_int_equal(truncate(path, st.st_size - 9), 0);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_EFORMAT);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_EFORMAT);

    /* another model size */
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    s_blank(&b);
    b.ck.dim = DIM - 1;
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_EFORMAT);
    assert_true(b.x[0] == 99.0f);

    /* none at all */
    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 9, FP, 5, &b.ck, err, sizeof err), BN_EIO);
}

/* A write that fails (here: the disk is full, /dev/full) is an error and
 * leaves the previous checkpoint as it was, not a 0-byte file. */
static void test_failed_write_keeps_previous(void **state)
{
    (void) state;
    s_state_t a, b;
    char err[512] = "", tmp[600];
    s_fill(&a, 4.0f, 1);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &a.ck, err, sizeof err), BN_OK);
    s_path(tmp, sizeof tmp, ".tmp");
    if (symlink("/dev/full", tmp) != 0)
        skip();
    s_state_t newer;
    s_fill(&newer, 8.0f, 2);
    assert_int_equal(bn_checkpoint_save(s_dir, 4, &newer.ck, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "failed"));
    assert_int_equal(access(tmp, F_OK), -1);
    s_blank(&b);
    assert_int_equal(bn_checkpoint_load(s_dir, 4, FP, 5, &b.ck, err, sizeof err), BN_OK);
    assert_int_equal(b.ck.epoch, 1);
    assert_true(b.x[0] == 4.0f);

    /* a directory that does not exist */
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/missing", s_dir);
    assert_int_equal(bn_checkpoint_save(nodir, 4, &a.ck, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "missing"));
}

static char *s_read(const char *path)
{
    static char buf[4096];
    assert_true(bn_fx_read(path, buf, sizeof buf) >= 0);
    return buf;
}

/* A node resumed at epoch k drops the log lines of epochs > k (it runs them
 * again), so no epoch is in the jsonl twice. */
static void test_trim_log(void **state)
{
    (void) state;
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/node-4.jsonl", s_dir);
    bn_fx_write(path, "{\"node\": 4, \"epoch\": 1, \"t_epoch\": 9}\n"
                  "{\"node\": 4, \"epoch\": 2, \"t_epoch\": 9}\n"
                  "{\"node\": 4, \"epoch\": 3, \"t_epoch\": 9}\n");
    assert_int_equal(bn_checkpoint_log_last(path), 3);
    assert_int_equal(bn_checkpoint_trim_log(path, 2, err, sizeof err), BN_OK);
    assert_string_equal(s_read(path), "{\"node\": 4, \"epoch\": 1, \"t_epoch\": 9}\n"
                                      "{\"node\": 4, \"epoch\": 2, \"t_epoch\": 9}\n");
    assert_int_equal(bn_checkpoint_log_last(path), 2);
    /* nothing to drop: unchanged */
    assert_int_equal(bn_checkpoint_trim_log(path, 5, err, sizeof err), BN_OK);
    assert_int_equal(bn_checkpoint_log_last(path), 2);
    /* a torn last line (killed mid-write) goes, and does not count as done */
    bn_fx_write(path, "{\"node\": 4, \"epoch\": 1}\n{\"node\": 4, \"epo");
    assert_int_equal(bn_checkpoint_log_last(path), 1);
    bn_fx_write(path, "{\"node\": 4, \"epoch\": 1}\n{\"node\": 4, \"epoch\": 2");
    assert_int_equal(bn_checkpoint_log_last(path), 1);
    assert_int_equal(bn_checkpoint_trim_log(path, 2, err, sizeof err), BN_OK);
    assert_string_equal(s_read(path), "{\"node\": 4, \"epoch\": 1}\n");
    /* resumed at 0: empty */
    assert_int_equal(bn_checkpoint_trim_log(path, 0, err, sizeof err), BN_OK);
    assert_string_equal(s_read(path), "");
    /* missing file: fine */
    char none[600];
    snprintf(none, sizeof none, "%s/none.jsonl", s_dir);
    assert_int_equal(bn_checkpoint_trim_log(none, 1, err, sizeof err), BN_OK);
    assert_int_equal(bn_checkpoint_log_last(none), 0);
}

/* Writes text at byte offset `at` of path (created if need be; the bytes
 * before it that were never written are a hole, read as NUL bytes). */
static void s_write_at(const char *path, off_t at, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, text, strlen(text), at), (ssize_t) strlen(text));
    close(fd);
}

/* The virtual memory this process maps now, in bytes (/proc/self/statm). */
static size_t s_vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t) pages * (size_t) sysconf(_SC_PAGESIZE);
}

/* bn_checkpoint_log_last(path) in a child whose address space may grow by
 * at most `room` bytes; the epoch, or -1 if the child did not exit normally. */
static long s_log_last_bounded(const char *path, size_t room)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t limit = s_vm_bytes() + room;
        struct rlimit rl = { limit, limit };
        if (s_vm_bytes() == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(255);
        uint32_t e = bn_checkpoint_log_last(path);
        _exit(e > 250 ? 250 : (int) e);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) != 255 ? WEXITSTATUS(status) : -1;
}

/* bn_checkpoint_log_last reads at most BN_CHECKPOINT_LOG_TAIL bytes, the
 * end of the file: a log whose middle is a 1 GiB line without a newline (a
 * sparse file: no disk used) is answered from its last line, with 64 MiB of
 * address space to spare (reading the whole line needs 1 GiB: before, the
 * read failed with ENOMEM and the answer was the first line's epoch 1). */
static void test_log_last_bounded(void **state)
{
    (void) state;
    char path[600];
    snprintf(path, sizeof path, "%s/node-5.jsonl", s_dir);
    unlink(path);
    const off_t gib = (off_t) 1 << 30;
    s_write_at(path, 0, "{\"node\": 5, \"epoch\": 1}\n{\"node\": 5, \"pad\": \"");
    s_write_at(path, gib, "\"}\n{\"node\": 5, \"epoch\": 7}\n");
    assert_int_equal(s_log_last_bounded(path, (size_t) 64 << 20), 7);
    /* ... and a torn line after it does not count */
    s_write_at(path, gib + 30, "{\"node\": 5, \"epoch\": 8");
    assert_int_equal(s_log_last_bounded(path, (size_t) 64 << 20), 7);
    unlink(path);

    /* The tail holds the longest line a node writes: ~1 KB of fixed keys
     * plus a weight entry of at most 14 bytes ("-1.23457e-05, ") per node,
     * for BN_REPORT_MAX_NODES = 65536 nodes. */
    assert_true(BN_CHECKPOINT_LOG_TAIL >= 4096 + 14 * 65536);
    size_t big = 14 * 65536;
    char *line = malloc(big + 64);
    assert_non_null(line);
    int w = snprintf(line, 64, "{\"node\": 5, \"epoch\": 3, \"weight\": [");
    memset(line + w, '0', big - (size_t) w);
    strcpy(line + big, "]}\n");
    s_write_at(path, 0, "{\"node\": 5, \"epoch\": 1}\n{\"node\": 5, \"epoch\": 2}\n");
    s_write_at(path, 48, line);
    assert_int_equal(bn_checkpoint_log_last(path), 3);
    free(line);
    unlink(path);

    /* A last line longer than the tail is not seen (its start is cut off):
     * 0, never the epoch of a fragment. */
    s_write_at(path, 0, "{\"node\": 5, \"epoch\": 1}\n{\"epoch\": 9, \"pad\": \"");
    s_write_at(path, (off_t) BN_CHECKPOINT_LOG_TAIL + 4096, "\"}\n");
    assert_int_equal(bn_checkpoint_log_last(path), 0);
    /* A device that never ends: bounded too. */
    assert_int_equal(s_log_last_bounded("/dev/zero", (size_t) 64 << 20), 0);
}

/* bn_checkpoint_trim_log reads a line into a buffer of
 * BN_CHECKPOINT_LOG_TAIL + 1 bytes at most: a line that does not fit (or
 * holds a NUL byte) goes with everything after it, in bounded memory.  A log
 * of epoch 1 then a 1 GiB line (sparse) trimmed to epoch 2 under a 64 MiB
 * address-space allowance keeps just the epoch-1 line (before: getline
 * failed with ENOMEM, the file was left as it was, 1 GiB). */
static void test_trim_log_bounded(void **state)
{
    (void) state;
    char path[600];
    snprintf(path, sizeof path, "%s/node-6.jsonl", s_dir);
    unlink(path);
    const char *first = "{\"node\": 6, \"epoch\": 1}\n";
    s_write_at(path, 0, first);
    s_write_at(path, (off_t) strlen(first), "{\"node\": 6, \"epoch\": 2, \"pad\": \"");
    s_write_at(path, (off_t) 1 << 30, "\"}\n");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t limit = s_vm_bytes() + ((size_t) 64 << 20);
        struct rlimit rl = { limit, limit };
        char err[512];
        if (s_vm_bytes() == 0 || setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(2);
        _exit(bn_checkpoint_trim_log(path, 2, err, sizeof err) == BN_OK ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t) strlen(first));
    assert_string_equal(s_read(path), first);
    /* a NUL byte in a line: it goes too */
    char err[512];
    bn_fx_write(path, "{\"node\": 6, \"epoch\": 1}\n{\"node\": 6, \"epoch\": 2}\n");
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "", 1, 30), 1);       /* inside the epoch-2 line */
    close(fd);
    assert_int_equal(bn_checkpoint_trim_log(path, 2, err, sizeof err), BN_OK);
    assert_string_equal(s_read(path), first);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused_for_another_run),
        cmocka_unit_test(test_corrupt_short_foreign),
        cmocka_unit_test(test_failed_write_keeps_previous),
        cmocka_unit_test(test_trim_log),
        cmocka_unit_test(test_log_last_bounded),
        cmocka_unit_test(test_trim_log_bounded),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
