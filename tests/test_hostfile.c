/*  test_hostfile.c -- hostfiles (every accepted slot syntax, repeated hosts,
 *  malformed lines named by line), placement (even spread under slot caps,
 *  Slurm's block layout when slots add up to n, refusal beyond the slots),
 *  node id lists, and key files (0600, never overwritten).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostfile.h"
#include "keyfile.h"
#include "fixture.h"

static void test_syntaxes(void **state)
{
    (void) state;
    bn_fx_file_write("# cluster\n"
            "a\n"
            "b 4\n"
            "c slots=3 max_slots=8   # Open MPI\n"
            "d:2\n"
            "e addr=10.0.0.5 slots=1\n");
    bn_hostfile_t hf;
    char err[256];
    assert_int_equal(bn_hostfile_load(&hf, bn_fx_file, err, sizeof err), BN_OK);
    assert_int_equal(hf.n_hosts, 5);
    assert_string_equal(hf.hosts[0].name, "a");
    assert_int_equal(hf.hosts[0].slots, 0);           /* no count: no limit */
    assert_int_equal(hf.hosts[1].slots, 4);
    assert_int_equal(hf.hosts[2].slots, 3);
    assert_int_equal(hf.hosts[3].slots, 2);
    assert_string_equal(hf.hosts[3].name, "d");
    assert_string_equal(hf.hosts[3].addr, "d");
    assert_string_equal(hf.hosts[4].addr, "10.0.0.5");
    assert_int_equal(hf.hosts[4].slots, 1);
    bn_hostfile_free(&hf);
    bn_hostfile_free(&hf);                            /* safe twice */
}

static void test_repeated_host(void **state)
{
    (void) state;
    /* SLURM_HOSTFILE style: one line per task. */
    bn_fx_file_write("n1\nn1\nn2\nn1\nn2 3\n");
    bn_hostfile_t hf;
    char err[256];
    assert_int_equal(bn_hostfile_load(&hf, bn_fx_file, err, sizeof err), BN_OK);
    assert_int_equal(hf.n_hosts, 2);
    assert_int_equal(hf.hosts[0].slots, 3);
    assert_int_equal(hf.hosts[1].slots, 4);
    bn_hostfile_free(&hf);
}

static void test_malformed(void **state)
{
    (void) state;
    static const struct { const char *text, *needle; } cases[] = {
        { "a\nb slots=0\n", ":2:" },
        { "a 3 4\n", "one slot count" },
        { "a:x\n", "after ':'" },
        { "a bogus\n", "'bogus'" },
        { "a/b\n", "not a host name" },
        { "# only a comment\n\n", "no host" },
        { "a addr=1.1.1.1\na addr=2.2.2.2\n", "address 1.1.1.1 already" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_fx_file_write(cases[i].text);
        bn_hostfile_t hf;
        char err[256] = "";
        assert_int_equal(bn_hostfile_load(&hf, bn_fx_file, err, sizeof err), BN_EFORMAT);
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
        assert_null(hf.hosts);
    }
    bn_hostfile_t hf;
    char err[256];
    assert_int_equal(bn_hostfile_load(&hf, "/nonexistent/hosts", err, sizeof err), BN_EIO);
    assert_string_equal(err, "/nonexistent/hosts: No such file or directory");
    assert_null(hf.hosts);
}

static void test_place(void **state)
{
    (void) state;
    char err[256];
    bn_hostfile_t hf;
    /* Even spread: 10 over 3 unlimited hosts = 4, 3, 3 in id blocks. */
    bn_fx_file_write("a\nb\nc\n");
    assert_int_equal(bn_hostfile_load(&hf, bn_fx_file, err, sizeof err), BN_OK);
    assert_int_equal(bn_hostfile_place(&hf, 10, err, sizeof err), BN_OK);
    assert_int_equal(hf.hosts[0].count, 4);
    assert_int_equal(hf.hosts[1].count, 3);
    assert_int_equal(hf.hosts[2].count, 3);
    assert_int_equal(hf.hosts[0].first, 0);
    assert_int_equal(hf.hosts[1].first, 4);
    assert_int_equal(hf.hosts[2].first, 7);
    bn_hostfile_free(&hf);

    /* Caps: a small host fills, the rest go to the others. */
    bn_fx_file_write("a 1\nb\nc 2\n");
    assert_int_equal(bn_hostfile_load(&hf, bn_fx_file, err, sizeof err), BN_OK);
    assert_int_equal(bn_hostfile_place(&hf, 9, err, sizeof err), BN_OK);
    assert_int_equal(hf.hosts[0].count, 1);
    assert_int_equal(hf.hosts[1].count, 6);
    assert_int_equal(hf.hosts[2].count, 2);
    bn_hostfile_free(&hf);

    /* Slots adding up to n: exactly the slots, i.e. Slurm's block layout. */
    bn_fx_file_write("n1 5\nn2 2\nn3 3\n");
    assert_int_equal(bn_hostfile_load(&hf, bn_fx_file, err, sizeof err), BN_OK);
    assert_int_equal(bn_hostfile_place(&hf, 10, err, sizeof err), BN_OK);
    assert_int_equal(hf.hosts[0].count, 5);
    assert_int_equal(hf.hosts[1].first, 5);
    assert_int_equal(hf.hosts[1].count, 2);
    assert_int_equal(hf.hosts[2].first, 7);
    assert_int_equal(hf.hosts[2].count, 3);
    /* One more than the slots: refused, naming both numbers. */
    assert_int_equal(bn_hostfile_place(&hf, 11, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "11 nodes"));
    assert_non_null(strstr(err, "10 slots"));
    assert_int_equal(bn_hostfile_place(&hf, 0, err, sizeof err), BN_EARG);
    bn_hostfile_free(&hf);
}

static void test_ids(void **state)
{
    (void) state;
    uint32_t *ids, n;
    char err[256];
    assert_int_equal(bn_ids_parse("0-4,7,9-10", 30, &ids, &n, err, sizeof err), BN_OK);
    assert_int_equal(n, 8);
    uint32_t want[] = { 0, 1, 2, 3, 4, 7, 9, 10 };
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    free(ids);
    assert_int_equal(bn_ids_parse("29", 30, &ids, &n, err, sizeof err), BN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 29);
    free(ids);
    static const char *bad[] = { "", "30", "0-30", "5-3", "1,,2", "1,", "-1", "a", "1-", "3,1-4", " 1",
                                 "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ids = (uint32_t *) 1;
        if (bn_ids_parse(bad[i], 30, &ids, &n, err, sizeof err) != BN_EARG)
            fail_msg("'%s' accepted", bad[i]);
        assert_null(ids);
    }
}

static void test_keyfile(void **state)
{
    (void) state;
    char pub[41], sec[41], err[256];
    assert_int_equal(bn_keyfile_pair(pub, sec, err, sizeof err), BN_OK);
    assert_int_equal(strlen(pub), 40);
    unlink(bn_fx_file);
    mode_t old = umask(0);                    /* even a permissive umask gives 0600 */
    int rc = bn_keyfile_write(bn_fx_file, pub, sec, err, sizeof err);
    umask(old);
    assert_int_equal(rc, BN_OK);
    struct stat st;
    assert_int_equal(stat(bn_fx_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(bn_fx_file, "r");
    char text[512] = "";
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char line[100];
    snprintf(line, sizeof line, "secret-key %s\n", sec);
    assert_non_null(strstr(text, line));
    /* A second write refuses and leaves the first key as it was. */
    char pub2[41], sec2[41];
    assert_int_equal(bn_keyfile_pair(pub2, sec2, err, sizeof err), BN_OK);
    assert_int_equal(bn_keyfile_write(bn_fx_file, pub2, sec2, err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "refusing to overwrite"));
    f = fopen(bn_fx_file, "r");
    char again[512] = "";
    len = fread(again, 1, sizeof again - 1, f);
    fclose(f);
    again[len] = '\0';
    assert_string_equal(text, again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_syntaxes, bn_fx_file_setup, bn_fx_file_teardown),
        cmocka_unit_test_setup_teardown(test_repeated_host, bn_fx_file_setup, bn_fx_file_teardown),
        cmocka_unit_test_setup_teardown(test_malformed, bn_fx_file_setup, bn_fx_file_teardown),
        cmocka_unit_test_setup_teardown(test_place, bn_fx_file_setup, bn_fx_file_teardown),
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_keyfile, bn_fx_file_setup, bn_fx_file_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
