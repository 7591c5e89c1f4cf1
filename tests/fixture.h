/*  fixture.h -- temporary files and directories of the cmocka tests.
 *
 *  Owns: where a test's scratch lives ($TMPDIR when short enough for an
 *  ipc:// endpoint below it, else /tmp), making it and removing it.  The
 *  write/read helpers assert (cmocka) instead of returning errors: they are
 *  for test bodies, not for setup functions.  Also: a forked child's
 *  results (bn_fx_child_words), for checks that a fresh process computes
 *  the same.
 */
#ifndef BN_TEST_FIXTURE_H
#define BN_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "layers.h"

struct CMUnitTest;

/* A fresh directory <tmp>/bn-test-NAME.XXXXXX into buf (cap >= 128);
 * 0, or -1 when it cannot be made. */
int bn_fx_tmpdir(char *buf, size_t cap, const char *name);

/* A fresh empty file <tmp>/bn-test-NAME.XXXXXX into buf; 0 or -1. */
int bn_fx_tmpfile(char *buf, size_t cap, const char *name);

/* One scratch file per test program: bn_fx_file_setup (a cmocka setup)
 * makes <tmp>/bn-test-PROGRAM.XXXXXX and puts its path in bn_fx_file,
 * bn_fx_file_teardown removes it, bn_fx_file_write replaces its content
 * (asserts). */
extern char bn_fx_file[256];
int bn_fx_file_setup(void **state);
int bn_fx_file_teardown(void **state);
void bn_fx_file_write(const char *text);

/* rm -rf DIR (kept when BN_KEEP_TMP is set); 0 or -1. */
int bn_fx_rmtree(const char *dir);

/* Replace the file at path with text (asserts). */
void bn_fx_write(const char *path, const char *text);

/* Up to cap - 1 bytes of the file at path into buf, NUL-terminated; the
 * count, or -1 when it cannot be opened. */
long bn_fx_read(const char *path, char *buf, size_t cap);

/* fn(out) run in a forked child and its n words sent back through a pipe
 * into out; asserts that the child exits 0 and sends all of them. */
void bn_fx_child_words(void (*fn)(uint64_t *out), uint64_t *out, size_t n);

/* Runs the cmocka group tests[0..count) once per kernel set, named
 * "PREFIX[set]", with the set selected and in *under_test; a set this CPU
 * or build lacks is reported as skipped, not hidden.  The sum of the
 * groups' failures, or 1 when a set cannot be selected. */
int bn_fx_run_per_kernel_set(const char *prefix, const struct CMUnitTest *tests, size_t count,
                             bn_kernels_t *under_test);
#define BN_FX_RUN_PER_KERNEL_SET(prefix, tests, under_test) \
    bn_fx_run_per_kernel_set((prefix), (tests), sizeof(tests) / sizeof((tests)[0]), (under_test))

#endif
