/*  test_swarmfile.c -- the swarm file parser: a valid file, and every kind of
 *  malformed line, each reported with its line number and bad value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "swarmfile.h"
#include "fixture.h"

#define KEY_A "0123456789abcdefghijklmnopqrstuvwxyzABCD"
#define KEY_B "#rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7XY"   /* starts with '#' */
#define KEY_C "Z85.-:+=^!/*?&<>()[]{}@%$#000000000000ab"

static void test_valid(void **state)
{
    (void) state;
    assert_int_equal(strlen(KEY_A), 40);
    assert_int_equal(strlen(KEY_B), 40);
    assert_int_equal(strlen(KEY_C), 40);
    bn_fx_file_write("# a three-node test swarm\n"
            "swarm   lab-test    # its name\n"
            "\n"
            "monitor tcp://10.0.0.9:7000\n"
            "option  rule   trimmed-mean\n"
            "option  byzantine 1   # one attacker\n"
            "node 2  ipc:///tmp/bn-2.sock " KEY_C "\n"
            "node 0  tcp://10.0.0.1:6000 " KEY_A " # host a\n"
            "\tnode 1 tcp://[::1]:6001 " KEY_B "\r\n");
    bn_swarm_t s;
    char err[256] = "";
    int rc = bn_swarm_load(&s, bn_fx_file, err, sizeof err);
    if (rc != BN_OK)
        fail_msg("%s", err);
    assert_string_equal(s.name, "lab-test");
    assert_int_equal(s.n, 3);
    assert_string_equal(s.nodes[0].endpoint, "tcp://10.0.0.1:6000");
    assert_string_equal(s.nodes[0].public_key, KEY_A);
    assert_string_equal(s.nodes[1].endpoint, "tcp://[::1]:6001");
    assert_string_equal(s.nodes[1].public_key, KEY_B);
    assert_string_equal(s.nodes[2].endpoint, "ipc:///tmp/bn-2.sock");
    assert_string_equal(s.nodes[2].public_key, KEY_C);
    assert_true(s.curve);
    assert_string_equal(s.monitor.endpoint, "tcp://10.0.0.9:7000");
    assert_string_equal(s.monitor.public_key, "");
    assert_int_equal(s.n_options, 2);
    assert_string_equal(s.option_names[0], "rule");
    assert_string_equal(s.option_values[0], "trimmed-mean");
    assert_string_equal(s.option_names[1], "byzantine");
    assert_string_equal(s.option_values[1], "1");
    /* swarm_id = mix64(FNV-1a-64("lab-test")), computed here independently. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = "lab-test"; *c; c++)
        h = (h ^ (unsigned char) *c) * 0x100000001b3ULL;
    assert_int_equal(s.swarm_id, bn_mix64(h));
    bn_swarm_free(&s);
    assert_null(s.nodes);
    bn_swarm_free(&s);

    /* Without keys and without a monitor; a different name gives a different id. */
    bn_fx_file_write("swarm other\nnode 0 tcp://a:1\nnode 1 tcp://a:2\n");
    assert_int_equal(bn_swarm_load(&s, bn_fx_file, err, sizeof err), BN_OK);
    assert_false(s.curve);
    assert_string_equal(s.monitor.endpoint, "");
    assert_string_equal(s.nodes[1].public_key, "");
    assert_int_equal(s.n_options, 0);
    assert_true(s.swarm_id != bn_mix64(h));
    bn_swarm_free(&s);
}

/* Loads text; expects BN_EFORMAT, a message with ":line:" (line > 0) and `what`. */
static void s_bad(const char *text, int line, const char *what)
{
    bn_fx_file_write(text);
    bn_swarm_t s;
    char err[512] = "", tag[32] = "";
    int rc = bn_swarm_load(&s, bn_fx_file, err, sizeof err);
    if (line > 0)
        snprintf(tag, sizeof tag, ":%d:", line);
    if (rc != BN_EFORMAT || !strstr(err, tag) || !strstr(err, what) || !strstr(err, bn_fx_file))
        fail_msg("for <<%s>> expected BN_EFORMAT with '%s' and '%s', got %d: %s", text, tag, what, rc, err);
    assert_null(s.nodes);
    assert_null(s.option_names);
}

#define HDR "swarm t\n"   /* line 1 */

static void test_malformed(void **state)
{
    (void) state;
    /* keywords and the swarm line */
    s_bad(HDR "nodes 0 tcp://a:1\n", 2, "unknown keyword 'nodes'");
    s_bad("node 0 tcp://a:1\n", 0, "no \"swarm <name>\" line");
    s_bad(HDR "swarm u\nnode 0 tcp://a:1\n", 2, "second swarm line 'u'");
    s_bad("swarm a b\nnode 0 tcp://a:1\n", 1, "swarm <name>");
    s_bad("swarm\nnode 0 tcp://a:1\n", 1, "swarm <name>");
    s_bad("swarm aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, "longer than 127");
    s_bad(HDR, 0, "no node lines");
    /* monitor */
    s_bad(HDR "monitor http://a:1\nnode 0 tcp://a:1\n", 2, "'http://a:1'");
    s_bad(HDR "monitor tcp://m:1\nmonitor tcp://m:2\nnode 0 tcp://a:1\n", 3, "second monitor");
    s_bad(HDR "monitor tcp://m:1 shortkey\nnode 0 tcp://a:1\n", 2, "'shortkey'");
    s_bad(HDR "monitor\nnode 0 tcp://a:1\n", 2, "monitor <endpoint>");
    /* options */
    s_bad(HDR "option rule\nnode 0 tcp://a:1\n", 2, "option <name> <value>");
    s_bad(HDR "option rule a b\nnode 0 tcp://a:1\n", 2, "option <name> <value>");
    s_bad(HDR "option --rule mean\nnode 0 tcp://a:1\n", 2, "'--rule'");
    s_bad(HDR "option Rule mean\nnode 0 tcp://a:1\n", 2, "'Rule'");
    s_bad(HDR "option rule mean\noption rule median\nnode 0 tcp://a:1\n", 3, "'rule' given twice");
    /* node ids */
    s_bad(HDR "node x tcp://a:1\n", 2, "bad node id 'x'");
    s_bad(HDR "node -1 tcp://a:1\n", 2, "bad node id '-1'");
    s_bad(HDR "node 100000 tcp://a:1\n", 2, "bad node id '100000'");
    s_bad(HDR "node 0x1 tcp://a:1\n", 2, "bad node id '0x1'");
    s_bad(HDR "node 0 tcp://a:1\nnode 0 tcp://a:2\n", 3, "node id 0 given twice (first on line 2)");
    s_bad(HDR "node 0 tcp://a:1\nnode 2 tcp://a:3\n", 0, "node id 1 missing");
    s_bad(HDR "node 1 tcp://a:1\n", 0, "node id 0 missing");
    s_bad(HDR "node 0\n", 2, "node <id> <endpoint>");
    s_bad(HDR "node 0 tcp://a:1 " KEY_A " extra\n", 2, "node <id> <endpoint>");
    s_bad(HDR "node 0 tcp://a:1 a b c d e f g h\n", 2, "too many fields");
    /* endpoints */
    s_bad(HDR "node 0 udp://a:1\n", 2, "tcp:// or ipc:// (got 'udp://a:1')");
    s_bad(HDR "node 0 a:1\n", 2, "'a:1'");
    s_bad(HDR "node 0 tcp://a\n", 2, "host:port (got 'tcp://a')");
    s_bad(HDR "node 0 tcp://:5\n", 2, "'tcp://:5'");
    s_bad(HDR "node 0 tcp://a:0\n", 2, "1..65535 (got 'tcp://a:0')");
    s_bad(HDR "node 0 tcp://a:65536\n", 2, "'tcp://a:65536'");
    s_bad(HDR "node 0 tcp://a:8x\n", 2, "'tcp://a:8x'");
    s_bad(HDR "node 0 ipc://\n", 2, "'ipc://'");
    s_bad(HDR "node 0 tcp://a:1\nnode 1 tcp://a:1\n", 3, "endpoint 'tcp://a:1' already used on line 2");
    /* two spellings of one socket */
    s_bad(HDR "node 0 tcp://127.0.0.1:7\nnode 1 tcp://localhost:7\n", 3,
          "'tcp://localhost:7' is the socket of 'tcp://127.0.0.1:7' on line 2");
    s_bad(HDR "node 0 tcp://LocalHost:7\nnode 1 tcp://127.0.0.1:07\n", 3, "is the socket of");
    s_bad(HDR "node 0 tcp://Host-A:7\nnode 1 tcp://host-a:7\n", 3, "is the socket of");
    s_bad(HDR "node 0 tcp://[::1]:7\nnode 1 tcp://[0:0:0:0:0:0:0:1]:7\n", 3, "is the socket of");
    s_bad(HDR "monitor tcp://localhost:9\nnode 0 tcp://127.0.0.1:9\n", 3,
          "'tcp://127.0.0.1:9' is the socket of the monitor 'tcp://localhost:9' on line 2");
    s_bad(HDR "monitor ipc:///tmp/m\nnode 0 tcp://a:1\nnode 1 ipc:///tmp/m\n", 4, "socket of the monitor");
    /* a swarm name that is not UTF-8 (it goes into summary.json) */
    s_bad("swarm caf\xe9\nnode 0 tcp://a:1\n", 1, "not printable UTF-8");
    s_bad("swarm a\xc0\xaf" "b\nnode 0 tcp://a:1\n", 1, "not printable UTF-8");   /* overlong '/' */
    s_bad("swarm a\x01" "b\nnode 0 tcp://a:1\n", 1, "not printable UTF-8");
    /* keys */
    s_bad(HDR "node 0 tcp://a:1 " KEY_A "E\n", 2, "40 Z85");
    s_bad(HDR "node 0 tcp://a:1 0123456789abcdefghijklmnopqrstuvwxyzABC~\n", 2,
          "'0123456789abcdefghijklmnopqrstuvwxyzABC~'");
    s_bad(HDR "node 0 tcp://a:1 0123456789abcdefghijklmnopqrstuvwxyzABC,\n", 2, "Z85");
    s_bad(HDR "node 0 tcp://a:1 " KEY_A "\nnode 1 tcp://a:2\n", 3, "node 1 lacks a public key");
    s_bad(HDR "node 0 tcp://a:1\nnode 1 tcp://a:2 " KEY_A "\n", 3, "node 1 has a public key");

    /* a missing file is an I/O error naming it */
    bn_swarm_t s;
    char err[256] = "";
    assert_int_equal(bn_swarm_load(&s, "/nonexistent/swarm.txt", err, sizeof err), BN_EIO);
    assert_non_null(strstr(err, "/nonexistent/swarm.txt"));
}

static void test_binary_garbage(void **state)
{
    (void) state;
    /* NUL bytes and very long lines are rejected, not crashed on. */
    FILE *f = fopen(bn_fx_file, "wb");
    assert_non_null(f);
    fputs("swarm t\nnode 0 tcp://a:1", f);
    fputc('\0', f);
    fputs("\n", f);
    fclose(f);
    bn_swarm_t s;
    char err[256] = "";
    assert_int_equal(bn_swarm_load(&s, bn_fx_file, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, ":2: NUL"));

    f = fopen(bn_fx_file, "w");
    assert_non_null(f);
    fputs("swarm t\noption x ", f);
    for (int i = 0; i < 10000; i++)
        fputc('v', f);
    fputs("\n", f);
    fclose(f);
    assert_int_equal(bn_swarm_load(&s, bn_fx_file, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, ":2: line longer"));
}

/* Different sockets stay accepted: same host other port, other host same
 * port, a valid UTF-8 name. */
static void test_distinct_sockets(void **state)
{
    (void) state;
    bn_fx_file_write("swarm caf\xc3\xa9-\xe2\x82\xac\n"
            "monitor tcp://127.0.0.1:9\n"
            "node 0 tcp://127.0.0.1:7\n"
            "node 1 tcp://localhost:8\n"
            "node 2 tcp://127.0.0.2:7\n"
            "node 3 tcp://[::1]:7\n");
    bn_swarm_t s;
    char err[256] = "";
    assert_int_equal(bn_swarm_load(&s, bn_fx_file, err, sizeof err), BN_OK);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.nodes[1].endpoint, "tcp://localhost:8");   /* kept as written */
    bn_swarm_free(&s);
}

/* Reading the swarm file from /dev/zero (or any endless line) fails at the
 * first line, with bounded memory, instead of growing a line buffer. */
static void test_dev_zero(void **state)
{
    (void) state;
    bn_swarm_t s;
    char err[256] = "";
    assert_int_equal(bn_swarm_load(&s, "/dev/zero", err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, "/dev/zero:1: NUL"));
    FILE *f = fopen(bn_fx_file, "w");
    assert_non_null(f);
    fputs("swarm t\n# ", f);
    for (int i = 0; i < 100000; i++)
        fputc('x', f);
    fclose(f);
    assert_int_equal(bn_swarm_load(&s, bn_fx_file, err, sizeof err), BN_EFORMAT);
    assert_non_null(strstr(err, ":2: line longer than 4096"));
    assert_int_equal(bn_swarm_load(&s, "/nonexistent/swarm", err, sizeof err), BN_EIO);
    assert_string_equal(err, "/nonexistent/swarm: cannot open: No such file or directory");
    assert_null(s.nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_binary_garbage),
        cmocka_unit_test(test_distinct_sockets),
        cmocka_unit_test(test_dev_zero),
    };
    return cmocka_run_group_tests(tests, bn_fx_file_setup, bn_fx_file_teardown);
}
