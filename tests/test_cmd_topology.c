/*  test_cmd_topology.c -- `byznode topology`: what it prints for a draw and
 *  a file (the fingerprint every node computes), --json, --out, and every
 *  bad argument refused with exit code 2 and one line naming it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "topology.h"
#include "fixture.h"

static char s_dir[512];
static char s_out[16384], s_err[16384];

static int s_setup(void **state)
{
    (void) state;
    return bn_fx_tmpdir(s_dir, sizeof s_dir, "cmdtopo");
}

static int s_teardown(void **state)
{
    (void) state;
    return bn_fx_rmtree(s_dir);
}

static void s_slurp(const char *path, char *buf, size_t cap)
{
    assert_true(bn_fx_read(path, buf, cap) >= 0);
}

/* Runs bn_cmd_topology on a NULL-terminated argument list, stdout and stderr
 * captured into s_out and s_err. */
static int s_run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *) "topology";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *) a;
    va_end(ap);
    argv[argc] = NULL;

    char po[600], pe[600];
    snprintf(po, sizeof po, "%s/stdout", s_dir);
    snprintf(pe, sizeof pe, "%s/stderr", s_dir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = bn_cmd_topology(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    s_slurp(po, s_out, sizeof s_out);
    s_slurp(pe, s_err, sizeof s_err);
    return rc;
}

/* Exit 2, nothing on stdout, one line on stderr containing want. */
static void s_refused(const char *want, int rc)
{
    if (rc != 2 || s_out[0] || !strstr(s_err, want) || strchr(s_err, '\n') != s_err + strlen(s_err) - 1)
        fail_msg("expected exit 2 and one line with '%s', got %d, stdout '%s', stderr '%s'", want, rc,
                 s_out, s_err);
}

static void test_draw_prints_the_nodes_fingerprint(void **state)
{
    (void) state;
    assert_int_equal(s_run("--nodes", "12", "--p", "0.5", "--min-degree", "3", "--seed", "7", NULL), 0);
    bn_topology_t t;
    char err[256], fp[64];
    assert_int_equal(bn_topology_er(&t, 12, 0.5, 3, 7, BN_TOPOLOGY_STATIC, err, sizeof err), BN_OK);
    snprintf(fp, sizeof fp, "fingerprint  %016" PRIx64 "\n", t.fingerprint);
    assert_non_null(strstr(s_out, fp));
    assert_non_null(strstr(s_out, "n            12\n"));
    assert_non_null(strstr(s_out, "connected    yes\n"));
    bn_topology_free(&t);

    /* a time-varying epoch is another graph; --json has the same figures */
    assert_int_equal(s_run("--nodes", "12", "--p", "0.5", "--seed", "7", "--epoch", "3", "--json", NULL), 0);
    assert_int_equal(bn_topology_er(&t, 12, 0.5, 0, 7, 3, err, sizeof err), BN_OK);
    snprintf(fp, sizeof fp, "\"fingerprint\": \"%016" PRIx64 "\"}", t.fingerprint);
    assert_non_null(strstr(s_out, fp));
    assert_non_null(strstr(s_out, "{\"n\": 12, "));
    bn_topology_free(&t);
}

static void test_out_and_file_round_trip(void **state)
{
    (void) state;
    char edges[600];
    snprintf(edges, sizeof edges, "%s/g.edges", s_dir);
    assert_int_equal(s_run("--nodes", "9", "--p", "0.6", "--seed", "2", "--out", edges, NULL), 0);
    char drawn[128];
    const char *at = strstr(s_out, "fingerprint  ");
    assert_non_null(at);
    snprintf(drawn, sizeof drawn, "%.29s", at);
    assert_int_equal(s_run("--file", edges, NULL), 0);
    assert_non_null(strstr(s_out, drawn));
    assert_int_equal(s_run("--file", edges, "--nodes", "9", NULL), 0);
    /* a file whose graph misses --min-degree: statistics printed, exit 2 */
    assert_int_equal(s_run("--file", edges, "--min-degree", "8", NULL), 2);
    assert_non_null(strstr(s_err, "minimum degree"));
}

static void test_bad_arguments(void **state)
{
    (void) state;
    s_refused("bad value '0' for --nodes", s_run("--nodes", "0", "--p", "0.5", NULL));
    s_refused("bad value 'x' for --nodes", s_run("--nodes", "x", "--p", "0.5", NULL));
    s_refused("bad value '10001' for --nodes", s_run("--nodes", "10001", "--p", "0.5", NULL));
    s_refused("bad value '-3' for --nodes", s_run("--nodes", "-3", "--p", "0.5", NULL));
    s_refused("bad value '2' for --p", s_run("--nodes", "5", "--p", "2", NULL));
    s_refused("bad value 'abc' for --p", s_run("--nodes", "5", "--p", "abc", NULL));
    s_refused("bad value 'nan' for --p", s_run("--nodes", "5", "--p", "nan", NULL));
    s_refused("bad value '-1' for --seed", s_run("--nodes", "5", "--p", "0.5", "--seed", "-1", NULL));
    s_refused("bad value 'zz' for --seed", s_run("--nodes", "5", "--p", "0.5", "--seed", "zz", NULL));
    s_refused("bad value '4294967295' for --epoch",
              s_run("--nodes", "5", "--p", "0.5", "--epoch", "4294967295", NULL));
    s_refused("bad value '5' for --min-degree (accepted: 0..4)",
              s_run("--nodes", "5", "--p", "0.5", "--min-degree", "5", NULL));
    s_refused("unknown option '--nodez'", s_run("--nodez", "5", NULL));
    s_refused("needs a value", s_run("--nodes", NULL));
    s_refused("unexpected argument 'extra'", s_run("--nodes", "5", "--p", "0.5", "extra", NULL));
    s_refused("--nodes and --p are required", s_run("--nodes", "5", NULL));
    char edges[600];
    snprintf(edges, sizeof edges, "%s/g2.edges", s_dir);
    bn_fx_write(edges, "0 1\n");
    s_refused("cannot be combined", s_run("--file", edges, "--p", "0.5", NULL));
    s_refused("no G(5, 0)", s_run("--nodes", "5", "--p", "0", "--min-degree", "1", NULL));
}

/* An empty edge list is refused (before: accepted, every node alone). */
static void test_empty_file_refused(void **state)
{
    (void) state;
    char edges[600];
    snprintf(edges, sizeof edges, "%s/empty.edges", s_dir);
    bn_fx_write(edges, "# nodes: 4\n");
    s_refused("no edges", s_run("--file", edges, "--nodes", "4", NULL));
    s_refused("no edges", s_run("--file", edges, NULL));
    s_refused("NUL", s_run("--file", "/dev/zero", NULL));
    s_refused("cannot open", s_run("--file", "/nonexistent/x.edges", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_prints_the_nodes_fingerprint),
        cmocka_unit_test(test_out_and_file_round_trip),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_empty_file_refused),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
