/*  fixture.c -- temporary files and directories of the cmocka tests (fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

/* ipc:// paths are bounded (sun_path: 108 bytes); a long $TMPDIR would
 * push a test's endpoints over it. */
#define S_TMPDIR_MAX 60

static int s_template(char *buf, size_t cap, const char *name)
{
    const char *t = getenv("TMPDIR");
    if (!t || !*t || strlen(t) > S_TMPDIR_MAX)
        t = "/tmp";
    int n = snprintf(buf, cap, "%s/bn-test-%s.XXXXXX", t, name);
    return n > 0 && (size_t) n < cap ? 0 : -1;
}

int bn_fx_tmpdir(char *buf, size_t cap, const char *name)
{
    if (s_template(buf, cap, name) != 0)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

int bn_fx_tmpfile(char *buf, size_t cap, const char *name)
{
    if (s_template(buf, cap, name) != 0)
        return -1;
    int fd = mkstemp(buf);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

char bn_fx_file[256];

int bn_fx_file_setup(void **state)
{
    (void) state;
    return bn_fx_tmpfile(bn_fx_file, sizeof bn_fx_file, program_invocation_short_name);
}

int bn_fx_file_teardown(void **state)
{
    (void) state;
    unlink(bn_fx_file);
    return 0;
}

void bn_fx_file_write(const char *text)
{
    bn_fx_write(bn_fx_file, text);
}

int bn_fx_rmtree(const char *dir)
{
    if (getenv("BN_KEEP_TMP"))
        return 0;
    char cmd[1100];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (n < 0 || (size_t) n >= sizeof cmd || strchr(dir, '\''))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

void bn_fx_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

long bn_fx_read(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (long) n;
}

int bn_fx_run_per_kernel_set(const char *prefix, const struct CMUnitTest *tests, size_t count,
                             bn_kernels_t *under_test)
{
    int failed = 0;
    for (int k = 0; k < BN_KERNELS_COUNT; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%s]", prefix, bn_kernels_name((bn_kernels_t) k));
        if (!bn_kernels_supported((bn_kernels_t) k)) {
            printf("[ SKIPPED  ] %s: this CPU or build has no %s kernels\n", name,
                   bn_kernels_name((bn_kernels_t) k));
            continue;
        }
        *under_test = (bn_kernels_t) k;
        if (bn_kernels_select(*under_test) != BN_OK)
            return 1;
        failed += _cmocka_run_group_tests(name, tests, count, NULL, NULL);
    }
    return failed;
}

void bn_fx_child_words(void (*fn)(uint64_t *out), uint64_t *out, size_t n)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        fn(out);
        ssize_t w = write(fd[1], out, n * sizeof *out);
        _exit(w == (ssize_t) (n * sizeof *out) ? 0 : 1);
    }
    close(fd[1]);
    memset(out, 0, n * sizeof *out);
    ssize_t r = read(fd[0], out, n * sizeof *out);
    close(fd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(r, n * sizeof *out);
}
