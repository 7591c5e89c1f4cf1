/*  test_options.c -- the option table: defaults, help, scope, the
 *  configuration fingerprint, the swarm-file-over-command-line rule, and the
 *  one-line errors with their did-you-mean.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "options.h"

/* Captures what f(file) prints. */
static char *s_capture(void (*f)(void *))
{
    FILE *m = tmpfile();
    assert_non_null(m);
    f(m);
    long len = ftell(m);
    rewind(m);
    char *buf = calloc((size_t) len + 1, 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) len, m), (size_t) len);
    fclose(m);
    return buf;
}

static void s_json_default(void *f);

static void s_help(void *f) { bn_options_print_help(f); }
static void s_wide(void *f) { bn_options_print_swarm_wide(f); }
static void s_rules(void *f) { bn_rule_list(f); }
static void s_attacks(void *f) { bn_options_print_attacks(f); }

/* The line of `text` that starts with "  --name " (static buffer). */
static const char *s_line(const char *text, const char *name)
{
    static char line[1024];
    char key[80];
    snprintf(key, sizeof key, "  --%s ", name);
    const char *p = strstr(text, key);
    if (!p)
        return NULL;
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int) n, p);
    return line;
}

static void test_defaults_from_the_table(void **state)
{
    (void) state;
    bn_options_t o;
    bn_options_default(&o);
    /* The paper's set-up (section 4 of 002_9f36060eb9cf48f4.txt). */
    assert_int_equal(o.model, BN_MODEL_CNN);
    assert_int_equal(o.epochs, 80);
    assert_int_equal(o.batch, 60);
    assert_int_equal(o.local_steps, 1);
    assert_true(o.lr == 0.1f);
    assert_true(o.weight_decay == 5e-4f);
    assert_true(o.p == 0.6);
    assert_int_equal(o.seed, 1);
    assert_int_equal(o.train_size, 60000);
    assert_int_equal(o.round_timeout_ms, 30000);
    assert_int_equal(o.future_rounds, 4);
    assert_string_equal(o.data_dir, BN_DATA_DIR_DEFAULT);
    assert_int_equal(o.rule.kind, BN_RULE_MEAN);
    assert_int_equal(o.attack.kind, BN_ATTACK_NONE);
    assert_false(o.trim_set);
    /* rule and attack parameters: the owning modules' defaults */
    assert_true(bn_rule_opts_get(&o.rule, "c") == 5.0);
    assert_true(o.attack.z == 2.0f);
}

static void test_help_shows_defaults_ranges_scope(void **state)
{
    (void) state;
    char *h = s_capture(s_help);
    const char *l = s_line(h, "epochs");
    assert_non_null(l);
    assert_non_null(strstr(l, "(default 80)"));
    assert_non_null(strstr(l, "[1..100000]"));
    assert_non_null(strstr(l, "[swarm-wide]"));
    l = s_line(h, "round-timeout");
    assert_non_null(strstr(l, "(default 30000)"));
    assert_null(strstr(l, "swarm-wide"));
    l = s_line(h, "rule");
    assert_non_null(strstr(l, "similarity"));
    assert_non_null(strstr(l, "(default mean)"));
    l = s_line(h, "c");
    assert_non_null(strstr(l, "(default 5)"));
    l = s_line(h, "lr");
    assert_non_null(strstr(l, "(default 0.1)"));
    free(h);

    char *r = s_capture(s_rules);
    assert_non_null(strstr(r, "similarity"));
    assert_non_null(strstr(r, "--lambda"));
    free(r);
    char *a = s_capture(s_attacks);
    assert_non_null(strstr(a, "\n  dlie          --z 2 [-1e+06..1e+06]  --omniscient false"));
    assert_non_null(strstr(a, "\n  ipm           --ipm-epsilon 0.1"));
    free(a);
}

/* Every option, with a value other than its default.  The swarm-wide list
 * must be exactly what the table says: a new swarm-wide row without a line
 * here fails the test. */
static const char *const s_swarm_wide[][3] = {
    { "model", "mlp", NULL }, { "epochs", "7", NULL }, { "batch", "32", NULL },
    { "local-steps", "2", NULL }, { "lr", "0.05", NULL }, { "weight-decay", "0", NULL },
    { "momentum", "0.9", NULL }, { "seed", "2", NULL }, { "partition", "shards", NULL },
    { "alpha", "0.7", NULL }, { "shards-per-node", "3", NULL }, { "train-size", "6000", NULL },
    { "eval-every", "2", NULL }, { "eval-subset", "100", NULL }, { "p", "0.5", NULL },
    { "min-degree", "2", NULL }, { "time-varying", "true", NULL }, { "rule", "similarity", NULL },
    { "byzantine", "1", NULL }, { "omniscient", "true", NULL },
    /* rule parameters (swarm-wide too) come from the rule tables: see
     * s_rule_param_case, which picks a rule that reads each and a value */
};

/* For rule parameter p: a rule that reads it (its canonical text names p)
 * and a value other than the default within p's range. */
static void s_rule_param_case(const bn_rule_param_t *p, const char **rule, char *value, size_t len)
{
    *rule = NULL;
    for (uint32_t k = 0; k < bn_rule_count() && !*rule; k++) {
        bn_rule_opts_t ro;
        bn_rule_opts_default(&ro, k);
        char canon[512], key[80];
        bn_rule_opts_canon(&ro, canon, sizeof canon);
        snprintf(key, sizeof key, " %s=", p->name);
        if (strstr(canon, key))
            *rule = bn_rule_name(k);
    }
    assert_non_null(*rule);
    double v = p->def < p->max ? (p->type == BN_RULE_PARAM_U32 ? p->def + 1 : (p->def + p->max) / 2)
                               : (p->type == BN_RULE_PARAM_U32 ? p->def - 1 : (p->def + p->min) / 2);
    snprintf(value, len, "%.9g", v);
}
static const char *const s_node_local[][2] = {
    { "swarm", "/x" }, { "id", "3" }, { "key", "/k" }, { "out", "/o" }, { "blas-threads", "2" },
    { "data", "/d" }, { "train-images", "/i" }, { "train-labels", "/l" }, { "topology", "/t" },
    { "attack", "dlie" }, { "z", "1.5" }, { "ipm-epsilon", "0.2" }, { "gaussian-std", "3" },
    { "constant", "2" }, { "drift-scale", "2" }, { "drift-direction", "random" },
    { "drift-target", "3" }, { "dissensus-scale", "0.5" }, { "rsf-std", "2" }, { "fang-b", "3" },
    { "negation-scale", "5" }, { "gradient-scale", "7" }, { "attack-mix", "echo,3:gaussian" },
    { "round-timeout", "100" }, { "future-rounds", "2" },
    { "checkpoint-every", "1" }, { "fault-drop", "0.1" }, { "fault-delay", "5" }, { "shm", "off" }, { "verbose", "2" },
};

static void test_fingerprint_is_exactly_the_swarm_wide_options(void **state)
{
    (void) state;
    /* the table's swarm-wide set is the list above */
    char *wide = s_capture(s_wide);
    size_t listed = 0;
    for (char *tok = strtok(wide, " \n"); tok; tok = strtok(NULL, " \n")) {
        bool found = bn_rule_param_find(tok) != NULL;
        for (size_t i = 0; i < BN_ARRAY_LEN(s_swarm_wide); i++)
            found = found || strcmp(tok, s_swarm_wide[i][0]) == 0;
        if (!found)
            fail_msg("swarm-wide option %s has no line in this test", tok);
        listed++;
    }
    free(wide);
    size_t n_rule_params = 0;
    while (bn_rule_param_at(n_rule_params))
        n_rule_params++;
    assert_int_equal(listed, BN_ARRAY_LEN(s_swarm_wide) + n_rule_params);

    char err[256];
    bn_options_t base;
    bn_options_default(&base);
    uint64_t fp = bn_options_fingerprint(&base);
    bn_options_t again;
    bn_options_default(&again);
    assert_true(bn_options_fingerprint(&again) == fp);   /* deterministic */
    for (size_t i = 0; i < BN_ARRAY_LEN(s_swarm_wide); i++) {
        bn_options_t o;
        bn_options_default(&o);
        if (s_swarm_wide[i][2])
            assert_int_equal(bn_options_set(&o, "rule", s_swarm_wide[i][2], err, sizeof err), BN_OK);
        uint64_t before = bn_options_fingerprint(&o);
        assert_true(bn_options_is_swarm_wide(s_swarm_wide[i][0]));
        assert_int_equal(bn_options_set(&o, s_swarm_wide[i][0], s_swarm_wide[i][1], err, sizeof err), BN_OK);
        if (bn_options_fingerprint(&o) == before)
            fail_msg("changing swarm-wide --%s did not change the fingerprint", s_swarm_wide[i][0]);
    }
    for (size_t i = 0; i < n_rule_params; i++) {
        const bn_rule_param_t *p = bn_rule_param_at(i);
        const char *rule;
        char value[64];
        s_rule_param_case(p, &rule, value, sizeof value);
        bn_options_t o;
        bn_options_default(&o);
        assert_int_equal(bn_options_set(&o, "rule", rule, err, sizeof err), BN_OK);
        uint64_t before = bn_options_fingerprint(&o);
        assert_true(bn_options_is_swarm_wide(p->name));
        assert_int_equal(bn_options_set(&o, p->name, value, err, sizeof err), BN_OK);
        if (bn_options_fingerprint(&o) == before)
            fail_msg("changing swarm-wide --%s did not change the fingerprint", p->name);
    }
    /* a rule parameter the rule does not read does not matter */
    bn_options_t unread;
    bn_options_default(&unread);
    assert_int_equal(bn_options_set(&unread, "lambda", "0.5", err, sizeof err), BN_OK);
    assert_true(bn_options_fingerprint(&unread) == fp);
    for (size_t i = 0; i < BN_ARRAY_LEN(s_node_local); i++) {
        bn_options_t o;
        bn_options_default(&o);
        assert_false(bn_options_is_swarm_wide(s_node_local[i][0]));
        assert_int_equal(bn_options_set(&o, s_node_local[i][0], s_node_local[i][1], err, sizeof err), BN_OK);
        if (bn_options_fingerprint(&o) != fp)
            fail_msg("node-local --%s changed the fingerprint", s_node_local[i][0]);
    }
    /* every option of the help is in one of the two lists */
    char *h = s_capture(s_help);
    size_t rows = strncmp(h, "  --", 4) == 0;
    for (const char *p = h; (p = strstr(p, "\n  --")) != NULL; p++)
        rows++;
    free(h);
    assert_int_equal(rows, BN_ARRAY_LEN(s_swarm_wide) + BN_ARRAY_LEN(s_node_local) + n_rule_params);
}

static int s_load(bn_options_t *o, const char *const *names, const char *const *values, uint32_t n,
                  int argc, const char **argv, char *err, size_t errlen)
{
    bn_swarm_t sw;
    memset(&sw, 0, sizeof sw);
    sw.n = 4;
    sw.n_options = n;
    sw.option_names = calloc(n + 1, sizeof *sw.option_names);
    sw.option_values = calloc(n + 1, sizeof *sw.option_values);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(sw.option_names[i], sizeof sw.option_names[i], "%s", names[i]);
        snprintf(sw.option_values[i], sizeof sw.option_values[i], "%s", values[i]);
    }
    int rc = bn_options_load(o, &sw, argc, (char **) argv, 0, err, errlen);
    free(sw.option_names);
    free(sw.option_values);
    return rc;
}

static void test_command_line_cannot_change_the_swarm_file(void **state)
{
    (void) state;
    const char *names[] = { "lr", "seed", "round-timeout", "rule" };
    const char *values[] = { "0.1", "5", "1000", "similarity" };
    bn_options_t o;
    char err[512] = "";

    /* a swarm-wide option of the swarm file, changed: refused, one line */
    const char *a1[] = { "--lr", "0.2" };
    assert_int_equal(s_load(&o, names, values, 4, 2, a1, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "--lr 0.2: the swarm file sets this swarm-wide option to 0.1"));
    const char *a2[] = { "--seed=6" };
    assert_int_equal(s_load(&o, names, values, 4, 1, a2, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "--seed 6"));
    const char *a3[] = { "--rule", "mean" };
    assert_int_equal(s_load(&o, names, values, 4, 2, a3, err, sizeof err), BN_EARG);

    /* the same value again, a node-local one, a swarm-wide one the file does
     * not set: accepted (the fingerprint then shows the difference) */
    const char *a4[] = { "--lr", "0.10", "--round-timeout", "50", "--epochs", "3", "--attack", "dlie" };
    assert_int_equal(s_load(&o, names, values, 4, 8, a4, err, sizeof err), BN_OK);
    assert_int_equal(o.round_timeout_ms, 50);
    assert_int_equal(o.epochs, 3);
    assert_int_equal(o.seed, 5);
    assert_string_equal(bn_rule_name(o.rule.kind), "similarity");
    bn_options_t p;
    const char *a5[] = { "--epochs", "4" };
    assert_int_equal(s_load(&p, names, values, 4, 2, a5, err, sizeof err), BN_OK);
    assert_true(bn_options_fingerprint(&p) != bn_options_fingerprint(&o));

    /* a bad swarm-file value says it came from the swarm file */
    const char *bad_values[] = { "abc", "5", "1000", "similarity" };
    assert_int_equal(s_load(&o, names, bad_values, 4, 0, NULL, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "swarm file: --lr: 'abc' is not a number"));
    /* constraints after all sources: b < n, min degree < n */
    const char *a6[] = { "--byzantine", "4" };
    assert_int_equal(s_load(&o, names, values, 4, 2, a6, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "below the swarm size 4"));
    const char *a7[] = { "--min-degree", "4" };
    assert_int_equal(s_load(&o, names, values, 4, 2, a7, err, sizeof err), BN_EARG);
    assert_non_null(strstr(err, "impossible in a swarm of 4"));
}

static void s_bad(const char *name, const char *value, const char *want)
{
    bn_options_t o;
    bn_options_default(&o);
    char err[1024] = "";
    int rc = bn_options_set(&o, name, value, err, sizeof err);
    if (rc != BN_EARG || !strstr(err, want))
        fail_msg("--%s %s: expected BN_EARG with '%s', got %d: %s", name, value, want, rc, err);
    if (strchr(err, '\n'))
        fail_msg("--%s %s: message is more than one line: %s", name, value, err);
}

static void test_errors_name_value_choices_and_near_misses(void **state)
{
    (void) state;
    s_bad("rule", "simlarity", "--rule: unknown rule 'simlarity' (did you mean similarity?); choices: standalone, mean");
    s_bad("attack", "lie", "(did you mean dlie or alie?)");
    s_bad("attack", "lie", "choices: none, dlie, random");
    s_bad("attack", "xyzzy-qqq", "unknown attack 'xyzzy-qqq'; choices:");
    s_bad("model", "cn", "(did you mean cnn?)");
    s_bad("partition", "shard", "(did you mean shards?)");
    s_bad("epochs", "0", "--epochs: 0 is outside the accepted range [1, 100000]");
    s_bad("epochs", "-3", "outside the accepted range");
    s_bad("epochs", "3x", "'3x' is not a number");
    s_bad("lr", "nan", "not a number");
    s_bad("lr", "", "not a number");
    s_bad("seed", "zz", "'zz' is not a number");
    s_bad("seed", "18446744073709551616", "not a number");
    s_bad("time-varying", "maybe", "not a boolean");
    s_bad("atack", "dlie", "unknown option --atack (did you mean --attack?)");
    s_bad("epoch", "3", "(did you mean --epochs?)");
    s_bad("completely-unknown", "1", "unknown option --completely-unknown (byznode node --help");

    char out[256];
    const char *names[] = { "similarity", "similarity-kl", "mean" };
    assert_int_equal(bn_options_suggest("simlarity", names, 3, out, sizeof out), 1);
    assert_string_equal(out, "similarity");
    assert_int_equal(bn_options_suggest("zzzzzzzz", names, 3, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static const bn_options_t *s_json_opts;
static void s_json_default(void *f) { bn_options_to_json(s_json_opts, f); }

static void test_json_from_the_table(void **state)
{
    (void) state;
    bn_options_t o;
    bn_options_default(&o);
    char err[256];
    assert_int_equal(bn_options_set(&o, "topology", "/a \"b\"\\c", err, sizeof err), BN_OK);
    s_json_opts = &o;
    char *buf = s_capture(s_json_default);
    size_t len = strlen(buf);
    assert_non_null(strstr(buf, "\"epochs\": 80"));
    assert_non_null(strstr(buf, "\"local_steps\": 1"));
    assert_non_null(strstr(buf, "\"round_timeout\": 30000"));
    assert_non_null(strstr(buf, "\"rule\": \"mean\""));
    assert_non_null(strstr(buf, "\"time_varying\": false"));
    assert_non_null(strstr(buf, "\"lr\": 0.100000001"));
    assert_non_null(strstr(buf, "\"topology\": \"/a \\\"b\\\"\\\\c\""));
    assert_int_equal(buf[0], '{');
    assert_int_equal(buf[len - 1], '}');
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_from_the_table),
        cmocka_unit_test(test_help_shows_defaults_ranges_scope),
        cmocka_unit_test(test_fingerprint_is_exactly_the_swarm_wide_options),
        cmocka_unit_test(test_command_line_cannot_change_the_swarm_file),
        cmocka_unit_test(test_errors_name_value_choices_and_near_misses),
        cmocka_unit_test(test_json_from_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
