/*  test_outfile.c -- a replacement is whole or nothing.
 *
 *  Real write failures without root: RLIMIT_FSIZE makes write() fail with
 *  EFBIG past a size (SIGXFSZ ignored), which is how a full disk looks to
 *  stdio.  The tmpfs disk-full case is in tests/monitor_diskfull.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"
#include "fixture.h"

static char s_dir[128];

static int s_setup(void **state)
{
    (void) state;
    return bn_fx_tmpdir(s_dir, sizeof s_dir, "outfile");
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

/* The file's text (a static buffer), NULL when there is none. */
static char *s_read(const char *path)
{
    static char buf[1 << 16];
    return bn_fx_read(path, buf, sizeof buf) < 0 ? NULL : buf;
}

/* Files in the directory (a failed replacement leaves no temporary). */
static int s_count_files(void)
{
    DIR *d = opendir(s_dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int s_write(const char *path, const char *text, size_t repeat, char *err, size_t errlen)
{
    bn_outfile_t *o = bn_outfile_open(path, err, errlen);
    if (!o)
        return BN_EIO;
    for (size_t i = 0; i < repeat; i++)
        fputs(text, bn_outfile_stream(o));
    return bn_outfile_commit(&o, err, errlen);
}

static void test_replaces_whole(void **state)
{
    (void) state;
    char path[200], err[512];
    snprintf(path, sizeof path, "%s/a.json", s_dir);
    assert_int_equal(s_write(path, "first\n", 1, err, sizeof err), BN_OK);
    assert_string_equal(s_read(path), "first\n");
    assert_int_equal(s_write(path, "second\n", 1, err, sizeof err), BN_OK);
    assert_string_equal(s_read(path), "second\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(s_count_files(), 1);
    /* abort leaves the old file and no temporary */
    bn_outfile_t *o = bn_outfile_open(path, err, sizeof err);
    assert_non_null(o);
    fputs("third", bn_outfile_stream(o));
    bn_outfile_abort(&o);
    assert_null(o);
    bn_outfile_abort(&o);
    assert_string_equal(s_read(path), "second\n");
    assert_int_equal(s_count_files(), 1);
    assert_int_equal(bn_outfile_commit(&o, err, sizeof err), BN_EARG);
}

static void test_failed_write_keeps_the_old_file(void **state)
{
    (void) state;
    char path[200], err[512] = "";
    snprintf(path, sizeof path, "%s/b.json", s_dir);
    assert_int_equal(s_write(path, "good\n", 1, err, sizeof err), BN_OK);
    /* a file-size limit of 4 KB: writing 64 KB fails in the middle */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim = { 4096, 4096 };
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = s_write(path, "0123456789abcdef", 4096, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, BN_EIO);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "previous version kept"));
    assert_string_equal(s_read(path), "good\n");
    assert_int_equal(s_count_files(), 2);   /* a.json and b.json, no temporary */
}

static void test_unwritable_places(void **state)
{
    (void) state;
    char path[200], err[512] = "";
    /* a directory that does not exist */
    snprintf(path, sizeof path, "%s/no/such/dir/c.json", s_dir);
    assert_null(bn_outfile_open(path, err, sizeof err));
    assert_non_null(strstr(err, "cannot create a temporary file"));
    /* the target is a directory: rename fails, nothing is left behind */
    snprintf(path, sizeof path, "%s/adir", s_dir);
    assert_int_equal(mkdir(path, 0755), 0);
    char inner[260];
    snprintf(inner, sizeof inner, "%s/keep", path);
    assert_int_equal(s_write(inner, "x", 1, err, sizeof err), BN_OK);
    assert_int_equal(s_write(path, "x", 1, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "rename failed"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replaces_whole),
        cmocka_unit_test(test_failed_write_keeps_the_old_file),
        cmocka_unit_test(test_unwritable_places),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
