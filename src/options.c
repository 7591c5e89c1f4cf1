/*  options.c -- the option table; see options.h. */
#include "options.h"
#include "dataset.h"
#include "json.h"
#include "rng.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_U32, T_U64, T_F32, T_F64, T_BOOL, T_PATH, T_MODEL, T_PART, T_RULE, T_ATTACK, T_DRIFT, T_MIX, T_SHM } s_type_t;

/* SWARM: must agree on every host (hashed into the configuration
 * fingerprint; a node's command line may not change one the swarm file
 * sets).  NODE: this node's own business. */
typedef enum { SWARM, NODE } s_scope_t;

/* One option: everything about it in one row (Redis config.c style).  The
 * help text, the defaults, the JSON writer, the fingerprint and the override
 * check are all generated from these rows; nothing else lists fields.
 *   min, max: accepted range of numbers (max 0 for an integer: no bound)
 *   def:      default as text, applied by bn_options_default; NULL = the
 *             owning module's default (bn_rule_opts_default, bn_attack_opts_default)
 *   of:       for a rule or attack parameter, the rules or attacks that read
 *             it (blank-separated), for `byznode rules` / `byznode attacks`  */
typedef struct {
    const char *name;
    s_type_t    type;
    size_t      offset;
    double      min, max;
    const char *def;
    s_scope_t   scope;
    const char *of;
    const char *help;
} s_row_t;

#define O(field) offsetof(bn_options_t, field)

static const s_row_t s_table[] = {
    { "swarm",            T_PATH,  O(swarm_path),         0, 0,      "",     NODE,  NULL, "swarm file shared by all nodes" },
    { "id",               T_U32,   O(id),                 0, 1e6,    "0",    NODE,  NULL, "this node's id in the swarm file" },
    { "key",              T_PATH,  O(key_path),           0, 0,      "",     NODE,  NULL, "CURVE secret key file (byznode keygen)" },
    { "out",              T_PATH,  O(out_dir),            0, 0,      "",     NODE,  NULL, "directory for this node's metrics and checkpoints" },
    { "model",            T_MODEL, O(model),              0, 0,      "cnn",  SWARM, NULL, "model" },
    { "epochs",           T_U32,   O(epochs),             1, 1e5,    "80",   SWARM, NULL, "training epochs" },
    { "batch",            T_U32,   O(batch),              1, 4096,   "60",   SWARM, NULL, "mini-batch size" },
    { "local-steps",      T_U32,   O(local_steps),        1, 1000,   "1",    SWARM, NULL, "SGD steps between gossip rounds (tau)" },
    { "lr",               T_F32,   O(lr),                 0, 100,    "0.1",  SWARM, NULL, "learning rate" },
    { "weight-decay",     T_F32,   O(weight_decay),       0, 1,      "5e-4", SWARM, NULL, "L2 weight decay" },
    { "momentum",         T_F32,   O(momentum),           0, 0.9999, "0",    SWARM, NULL, "SGD momentum (0 = none)" },
    { "seed",             T_U64,   O(seed),               0, 0,      "1",    SWARM, NULL, "run seed: topology, partition, init, Byzantine set" },
    { "blas-threads",     T_U32,   O(blas_threads),       1, 256,    "1",    NODE,  NULL, "OpenBLAS threads of this node" },
    { "data",             T_PATH,  O(data_dir),           0, 0,      BN_DATA_DIR_DEFAULT, NODE, NULL, "Fashion-MNIST IDX files, plain or .gz" },
    { "train-images",     T_PATH,  O(train_images),       0, 0,      "",     NODE,  NULL, "this node's own training images (IDX) instead of a shard" },
    { "train-labels",     T_PATH,  O(train_labels),       0, 0,      "",     NODE,  NULL, "this node's own training labels (IDX)" },
    { "partition",        T_PART,  O(partition),          0, 0,      "iid",  SWARM, NULL, "how the training set is split over the nodes" },
    { "alpha",            T_F64,   O(alpha),              1e-6, 1e6, "0.5",  SWARM, NULL, "Dirichlet concentration" },
    { "shards-per-node",  T_U32,   O(shards_per_node),    1, 1000,   "2",    SWARM, NULL, "label-sorted shards per node" },
    { "train-size",       T_U32,   O(train_size),         1, 1e9,    "60000",SWARM, NULL, "training images in the whole swarm (sets rounds per epoch)" },
    { "eval-every",       T_U32,   O(eval_every),         1, 1e5,    "1",    SWARM, NULL, "evaluate every k epochs (the last always)" },
    { "eval-subset",      T_U32,   O(eval_subset),        0, 1e7,    "0",    SWARM, NULL, "test images per evaluation, 0 = all (last epoch: all)" },
    { "p",                T_F64,   O(p),                  0, 1,      "0.6",  SWARM, NULL, "Erdos-Renyi edge probability" },
    { "min-degree",       T_U32,   O(min_degree),         0, 1e6,    "0",    SWARM, NULL, "redraw until every degree >= this (0 = 2b+1)" },
    { "time-varying",     T_BOOL,  O(time_varying),       0, 1,      "false",SWARM, NULL, "a new graph every epoch" },
    { "topology",         T_PATH,  O(topology_file),      0, 0,      "",     NODE,  NULL, "edge-list file instead of Erdos-Renyi (its graph's fingerprint is checked on the wire)" },
    { "rule",             T_RULE,  O(rule.kind),          0, 0,      "mean", SWARM, NULL, "aggregation rule (byznode rules; docs/rules.md)" },
    /* The rules' own parameters (--c, --trim, ...) are rows of the rule
     * tables (aggregate.h: bn_rule_param_find / bn_rule_opts_set); all of
     * them are swarm-wide. */
    { "byzantine",        T_U32,   O(byzantine),          0, 1e6,    "0",    SWARM, NULL, "number of Byzantine nodes in the swarm (b)" },
    { "attack",           T_ATTACK,O(attack.kind),        0, 0,      "none", NODE,  NULL, "this node's attack (none = honest; byznode attacks)" },
    { "z",                T_F32,   O(attack.z),           -1e6, 1e6, NULL,   NODE,  "dlie", "dlie: z" },
    { "ipm-epsilon",      T_F32,   O(attack.epsilon),     -1e6, 1e6, NULL,   NODE,  "ipm", "ipm: epsilon" },
    { "gaussian-std",     T_F32,   O(attack.gaussian_std),0, 1e9,    NULL,   NODE,  "gaussian", "gaussian attack: std" },
    { "constant",         T_F32,   O(attack.value),       -1e30, 1e30, NULL, NODE,  "constant", "constant attack: value" },
    { "drift-scale",      T_F32,   O(attack.drift_scale), -1e6, 1e6, NULL,   NODE,  "drift", "drift: step in multiples of the victim's honest spread" },
    { "drift-direction",  T_DRIFT, O(attack.drift_dir),   0, 0,      NULL,   NODE,  "drift minmax minsum", "direction u: reverse | random | target" },
    { "drift-target",     T_U32,   O(attack.drift_target),0, 1e6,    NULL,   NODE,  "drift minmax minsum", "direction target: an honest id (unset: the zero model)" },
    { "dissensus-scale",  T_F32,   O(attack.dissensus_scale), -1e6, 1e6, NULL, NODE, "dissensus", "dissensus: step in multiples of the victim's honest spread" },
    { "rsf-std",          T_F32,   O(attack.rsf_std),     0, 1e9,    NULL,   NODE,  "random-sign-flip", "random-sign-flip: std of the factor r on the update" },
    { "fang-b",           T_F32,   O(attack.fang_b),      1, 1e6,    NULL,   NODE,  "ofom", "ofom: stretch beyond the honest extremes" },
    { "negation-scale",   T_F32,   O(attack.negation_scale), 0, 1e30, NULL,  NODE,  "model-negation", "model-negation: k on the sum of honest updates" },
    { "gradient-scale",   T_F32,   O(attack.gradient_scale), -1e30, 1e30, NULL, NODE, "gradient-scale", "gradient-scale: k on the own update" },
    { "attack-mix",       T_MIX,   O(attack.mix),         0, 0,      NULL,   NODE,  "mixed", "mixed: NAME,... by Byzantine rank and/or ID:NAME,..." },
    { "omniscient",       T_BOOL,  O(omniscient),         0, 1,      "false",SWARM, "*", "attackers pool every honest model they hear" },
    { "round-timeout",    T_U32,   O(round_timeout_ms),   1, 1e8,    "30000",NODE,  NULL, "ms to wait for a round's neighbours" },
    { "future-rounds",    T_U32,   O(future_rounds),      1, 64,     "4",    NODE,  NULL, "rounds ahead whose messages are kept" },
    { "checkpoint-every", T_U32,   O(checkpoint_every),   0, 1e5,    "0",    NODE,  NULL, "epochs between checkpoints (0 = never; the last epoch always when > 0)" },
    { "fault-drop",       T_F64,   O(fault_drop),         0, 1,      "0",    NODE,  NULL, "injected drop probability on outgoing messages" },
    { "fault-delay",      T_U32,   O(fault_delay_ms),     0, 1e6,    "0",    NODE,  NULL, "injected delay (ms) on outgoing messages" },
    { "shm",              T_SHM,   O(shm),                0, 0,      "auto", NODE,  NULL, "same-host models through shared memory (ipc:// peers, not under CURVE): auto (rings, references through FIFOs) | rings (references over the sockets) | off" },
    { "verbose",          T_U32,   O(verbose),            0, 3,      "1",    NODE,  NULL, "log level: 0 warn, 1 info, 2 debug" },
};

/* ---- names, choices and did-you-mean -------------------------------------- */

/* The names a T_MODEL / T_PART / T_RULE / T_ATTACK value may take, from the
 * owning modules' name tables. */
static uint32_t s_choices(s_type_t type, const char **out, uint32_t cap)
{
    uint32_t n = 0;
    switch (type) {
    case T_MODEL:
        for (int k = BN_MODEL_CNN; k <= BN_MODEL_LOGREG && n < cap; k++)
            out[n++] = bn_model_name((bn_model_kind_t) k);
        break;
    case T_PART:
        for (int k = BN_PART_IID; k <= BN_PART_DIRICHLET && n < cap; k++)
            out[n++] = bn_partition_name((bn_partition_kind_t) k);
        break;
    case T_RULE:
        for (uint32_t k = 0; k < bn_rule_count() && n < cap; k++)
            out[n++] = bn_rule_name((bn_rule_kind_t) k);
        break;
    case T_ATTACK:
        for (int k = 0; k < BN_ATTACK_COUNT && n < cap; k++)
            out[n++] = bn_attack_name((bn_attack_kind_t) k);
        break;
    case T_DRIFT:
        for (int k = 0; k < BN_DRIFT_COUNT && n < cap; k++)
            out[n++] = bn_drift_dir_name((bn_drift_dir_t) k);
        break;
    case T_SHM:
        for (int k = 0; k < BN_SHM_MODE_COUNT && n < cap; k++)
            out[n++] = bn_shm_mode_name((bn_shm_mode_t) k);
        break;
    default:
        break;
    }
    return n;
}

/* Levenshtein distance of a and b (both < 64 bytes; longer: a large number). */
static unsigned s_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= 64 || lb >= 64)
        return 1000;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned) j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned) i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

size_t bn_options_suggest(const char *word, const char *const *names, size_t n, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    unsigned best = 1000;
    for (size_t i = 0; i < n; i++) {
        unsigned d = s_distance(word, names[i]);
        if (d < best)
            best = d;
    }
    /* Close enough to be a typo: 1 edit for short words, a third of the word for long ones. */
    size_t len = strlen(word);
    unsigned limit = len <= 4 ? 1 : (unsigned) (len / 3 > 2 ? len / 3 : 2);
    if (best > limit)
        return 0;
    size_t used = 0, found = 0;
    for (size_t i = 0; i < n; i++) {
        if (s_distance(word, names[i]) != best)
            continue;
        int w = snprintf(out + used, cap > used ? cap - used : 0, "%s%s", found ? " or " : "", names[i]);
        if (w > 0)
            used += (size_t) w;
        found++;
    }
    return found;
}

/* " (did you mean X?)" into buf, or "" when nothing is close. */
static void s_hint(const char *word, const char *const *names, size_t n, char *buf, size_t cap)
{
    char sug[256];
    if (bn_options_suggest(word, names, n, sug, sizeof sug))
        snprintf(buf, cap, " (did you mean %s?)", sug);
    else if (cap)
        buf[0] = '\0';
}

/* ---- values as text ------------------------------------------------------- */

/* The canonical text of a row's value in o: what help shows as the default,
 * what the override check compares and what the fingerprint hashes.  Floats
 * are written with enough digits to round-trip. */
static void s_format(const bn_options_t *o, const s_row_t *r, char *buf, size_t cap)
{
    const char *at = (const char *) o + r->offset;
    switch (r->type) {
    case T_U32:    snprintf(buf, cap, "%" PRIu32, *(const uint32_t *) at); break;
    case T_U64:    snprintf(buf, cap, "%" PRIu64, *(const uint64_t *) at); break;
    case T_F32:    snprintf(buf, cap, "%.9g", (double) *(const float *) at); break;
    case T_F64:    snprintf(buf, cap, "%.17g", *(const double *) at); break;
    case T_BOOL:   snprintf(buf, cap, "%s", *(const bool *) at ? "true" : "false"); break;
    case T_PATH:   snprintf(buf, cap, "%s", at); break;
    case T_MODEL:  snprintf(buf, cap, "%s", bn_model_name(*(const bn_model_kind_t *) at)); break;
    case T_PART:   snprintf(buf, cap, "%s", bn_partition_name(*(const bn_partition_kind_t *) at)); break;
    case T_RULE:   snprintf(buf, cap, "%s", bn_rule_name(*(const bn_rule_kind_t *) at)); break;
    case T_ATTACK: snprintf(buf, cap, "%s", bn_attack_name(*(const bn_attack_kind_t *) at)); break;
    case T_DRIFT:  snprintf(buf, cap, "%s", bn_drift_dir_name(*(const bn_drift_dir_t *) at)); break;
    case T_MIX:    snprintf(buf, cap, "%s", at); break;
    case T_SHM:    snprintf(buf, cap, "%s", bn_shm_mode_name(*(const bn_shm_mode_t *) at)); break;
    }
}

/* Human text of a row's default: "%g" for floats (not 17 digits). */
static void s_format_short(const bn_options_t *o, const s_row_t *r, char *buf, size_t cap)
{
    const char *at = (const char *) o + r->offset;
    if (r->type == T_F32)
        snprintf(buf, cap, "%g", (double) *(const float *) at);
    else if (r->type == T_F64)
        snprintf(buf, cap, "%g", *(const double *) at);
    else
        s_format(o, r, buf, cap);
}

void bn_options_default(bn_options_t *o)
{
    memset(o, 0, sizeof *o);
    bn_rule_opts_default(&o->rule, BN_RULE_MEAN);
    bn_attack_opts_default(&o->attack, BN_ATTACK_NONE);
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++) {
        if (!s_table[i].def)
            continue;
        char err[160];
        int rc = bn_options_set(o, s_table[i].name, s_table[i].def, err, sizeof err);
        assert(rc == BN_OK);   /* a default outside its own row's range is a programmer error */
        (void) rc;
    }
    o->trim_set = false;
    o->attack_set = false;
}

static const s_row_t *s_find(const char *name)
{
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++)
        if (strcmp(s_table[i].name, name) == 0)
            return &s_table[i];
    return NULL;
}

/* "unknown option --NAME (did you mean --X?)" */
static int s_unknown(const char *name, char *err, size_t errlen)
{
    const char *names[BN_ARRAY_LEN(s_table) + 64];
    size_t n = 0;
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++)
        names[n++] = s_table[i].name;
    for (size_t i = 0; bn_rule_param_at(i) && n < BN_ARRAY_LEN(names); i++)
        names[n++] = bn_rule_param_at(i)->name;
    char sug[256];
    if (bn_options_suggest(name, names, n, sug, sizeof sug)) {
        /* prefix every suggestion with "--" */
        char with[320] = "--";
        size_t w = 2;
        for (const char *c = sug; *c && w + 4 < sizeof with; c++) {
            with[w++] = *c;
            if (strncmp(c, " or ", 4) == 0 && w + 6 < sizeof with) {
                memcpy(with + w, "or --", 5);
                w += 5;
                c += 3;
            }
        }
        with[w] = '\0';
        return bn_fail(err, errlen, BN_EARG, "unknown option --%s (did you mean %s?)", name, with);
    }
    return bn_fail(err, errlen, BN_EARG, "unknown option --%s (byznode node --help lists them)", name);
}

/* "--rule: unknown rule 'simlarity' (did you mean similarity?); choices: ..." */
static int s_bad_choice(const s_row_t *r, const char *value, const char *what, char *err, size_t errlen)
{
    const char *names[64];
    uint32_t n = s_choices(r->type, names, 64);
    char hint[300], list[768];
    s_hint(value, names, n, hint, sizeof hint);
    size_t used = 0;
    list[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t) w >= sizeof list - used)
            break;
        used += (size_t) w;
    }
    return bn_fail(err, errlen, BN_EARG, "--%s: unknown %s '%s'%s; choices: %s", r->name, what, value,
                   hint, list);
}

/* A numeric row's value (T_U32, T_U64, T_F32, T_F64) into at, checked against the row's range. */
static int s_set_number(const s_row_t *r, char *at, const char *name, const char *value, char *err,
                        size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (r->type) {
    case T_U32:
    case T_U64: {
        if (value[0] == '-')
            goto range;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end)
            goto bad;
        if (r->max > 0 && ((double) v < r->min || (double) v > r->max))
            goto range;
        if (r->type == T_U32)
            *(uint32_t *) at = (uint32_t) v;
        else
            *(uint64_t *) at = v;
        return BN_OK;
    }
    case T_F32:
    case T_F64: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            goto bad;
        if (v < r->min || v > r->max)
            goto range;
        if (r->type == T_F32)
            *(float *) at = (float) v;
        else
            *(double *) at = v;
        return BN_OK;
    }
    default:
        break;
    }
bad:
    return bn_fail(err, errlen, BN_EARG, "--%s: '%s' is not a number", name, value);
range:
    return bn_fail(err, errlen, BN_EARG, "--%s: %s is outside the accepted range [%g, %g]",
                   name, value, r->min, r->max);
}

int bn_options_set(bn_options_t *o, const char *name, const char *value, char *err, size_t errlen)
{
    const s_row_t *r = s_find(name);
    if (!r && bn_rule_param_find(name)) {
        if (strcmp(name, "trim") == 0)
            o->trim_set = true;
        return bn_rule_opts_set(&o->rule, name, value, err, errlen);
    }
    if (!r)
        return s_unknown(name, err, errlen);
    if (strcmp(name, "attack") == 0)
        o->attack_set = true;
    char *at = (char *) o + r->offset;
    switch (r->type) {
    case T_U32:
    case T_U64:
    case T_F32:
    case T_F64:
        return s_set_number(r, at, name, value, err, errlen);
    case T_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
            *(bool *) at = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(bool *) at = false;
        else
            return bn_fail(err, errlen, BN_EARG, "--%s: '%s' is not a boolean (true/false)", name, value);
        return BN_OK;
    case T_MIX:
        if (strlen(value) >= BN_ATTACK_MIX_MAX)
            return bn_fail(err, errlen, BN_EARG, "--%s: longer than %d bytes", name, BN_ATTACK_MIX_MAX - 1);
        if (bn_attack_mix_check(value, err, errlen) != BN_OK)
            return BN_EARG;
        snprintf(at, BN_ATTACK_MIX_MAX, "%s", value);
        return BN_OK;
    case T_PATH:
        if (strlen(value) >= BN_PATH_MAX)
            return bn_fail(err, errlen, BN_EARG, "--%s: path longer than %d bytes", name, BN_PATH_MAX - 1);
        snprintf(at, BN_PATH_MAX, "%s", value);
        return BN_OK;
    case T_MODEL:
        if (bn_model_parse(value, (bn_model_kind_t *) at) != BN_OK)
            return s_bad_choice(r, value, "model", err, errlen);
        return BN_OK;
    case T_PART:
        if (bn_partition_parse(value, (bn_partition_kind_t *) at) != BN_OK)
            return s_bad_choice(r, value, "partition", err, errlen);
        return BN_OK;
    case T_RULE: {
        bn_rule_kind_t k;
        if (bn_rule_parse(value, &k) != BN_OK)
            return s_bad_choice(r, value, "rule", err, errlen);
        /* Keep the rule's own parameters if already set; only the kind changes. */
        o->rule.kind = k;
        return BN_OK;
    }
    case T_ATTACK: {
        bn_attack_kind_t k;
        if (bn_attack_parse(value, &k) != BN_OK)
            return s_bad_choice(r, value, "attack", err, errlen);
        o->attack.kind = k;
        return BN_OK;
    }
    case T_DRIFT:
        if (bn_drift_dir_parse(value, (bn_drift_dir_t *) at) != BN_OK)
            return s_bad_choice(r, value, "direction", err, errlen);
        return BN_OK;
    case T_SHM:
        if (bn_shm_mode_parse(value, (bn_shm_mode_t *) at) != BN_OK)
            return s_bad_choice(r, value, "choice", err, errlen);
        return BN_OK;
    }
    return bn_fail(err, errlen, BN_EARG, "--%s: '%s' is not a number", name, value);
}

int bn_options_parse_argv(bn_options_t *o, int argc, char **argv, int first, char *err, size_t errlen)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return bn_fail(err, errlen, BN_EARG, "unexpected argument '%s' (options are --name value)", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t) (eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name)
            return bn_fail(err, errlen, BN_EARG, "unknown option %s", a);
        memcpy(name, a + 2, len);
        name[len] = 0;
        const s_row_t *r = s_find(name);
        if (!r && !bn_rule_param_find(name))
            return s_unknown(name, err, errlen);
        const char *value;
        if (eq)
            value = eq + 1;
        else if (r && r->type == T_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            value = "true";
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return bn_fail(err, errlen, BN_EARG, "--%s needs a value", name);
        int rc = bn_options_set(o, name, value, err, errlen);
        if (rc != BN_OK)
            return rc;
    }
    return BN_OK;
}

int bn_options_finish(bn_options_t *o, uint32_t n_nodes, char *err, size_t errlen)
{
    if (o->byzantine >= n_nodes && n_nodes > 0)
        return bn_fail(err, errlen, BN_EARG, "--byzantine %u: must be below the swarm size %u",
                       o->byzantine, n_nodes);
    if (o->min_degree == 0 && o->byzantine > 0) {
        o->min_degree = 2 * o->byzantine + 1;
        if (n_nodes > 0 && o->min_degree >= n_nodes)
            return bn_fail(err, errlen, BN_EARG, "--byzantine %u: every node needs 2b+1 = %u neighbours "
                           "(the default --min-degree), impossible in a swarm of %u nodes",
                           o->byzantine, o->min_degree, n_nodes);
    }
    if (n_nodes > 0 && o->min_degree >= n_nodes)
        return bn_fail(err, errlen, BN_EARG, "--min-degree %u: impossible in a swarm of %u nodes",
                       o->min_degree, n_nodes);
    if (o->id >= n_nodes && n_nodes > 0)
        return bn_fail(err, errlen, BN_EARG, "--id %u: the swarm file has nodes 0..%u", o->id, n_nodes - 1);
    if ((o->train_images[0] != 0) != (o->train_labels[0] != 0))
        return bn_fail(err, errlen, BN_EARG, "--train-images and --train-labels go together");
    /* BRIDGE and Krum are defined for a known bound b on Byzantine
     * neighbours; without --trim they assume the swarm's --byzantine. */
    if (!o->trim_set && o->byzantine > 0)
        bn_rule_opts_put(&o->rule, "trim", o->byzantine);
    o->rule.lr = o->lr;
    o->rule.seed = o->seed;
    int rc = bn_rule_opts_check(&o->rule, err, errlen);
    if (rc != BN_OK)
        return rc;
    o->attack.n = n_nodes;
    o->attack.b = o->byzantine;
    o->attack.seed = o->seed;
    /* A `mixed` attacker runs the attack attack-mix gives its id. */
    return bn_attack_resolve(&o->attack, o->id, o->seed, n_nodes, o->byzantine, err, errlen);
}

/* Range text of a numeric row: "[1..4096]", "" when unbounded or not numeric. */
static void s_range(const s_row_t *r, char *buf, size_t cap)
{
    bool num = r->type == T_U32 || r->type == T_U64 || r->type == T_F32 || r->type == T_F64;
    if (num && (r->max > 0 || r->type == T_F32 || r->type == T_F64))
        snprintf(buf, cap, " [%g..%g]", r->min, r->max);
    else if (cap)
        buf[0] = '\0';
}

void bn_options_print_help(void *file)
{
    FILE *f = file;
    bn_options_t d;
    bn_options_default(&d);
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++) {
        const s_row_t *r = &s_table[i];
        char def[BN_PATH_MAX + 8], range[64];
        s_format_short(&d, r, def, sizeof def);
        s_range(r, range, sizeof range);
        fprintf(f, "  --%-18s %s%s", r->name, r->help, range);
        const char *names[64];
        uint32_t n = s_choices(r->type, names, 64);
        if (n) {
            fputs(" {", f);
            for (uint32_t k = 0; k < n; k++)
                fprintf(f, "%s%s", k ? "|" : "", names[k]);
            fputc('}', f);
        }
        if (r->type == T_BOOL)
            fputs(" (flag)", f);
        else
            fprintf(f, " (default %s)", def[0] ? def : "none");
        fprintf(f, "%s\n", r->scope == SWARM ? " [swarm-wide]" : "");
    }
    for (size_t i = 0; bn_rule_param_at(i); i++) {
        const bn_rule_param_t *p = bn_rule_param_at(i);
        fprintf(f, "  --%-18s %s [%g..%g] (default %g) [swarm-wide]\n", p->name, p->help, p->min, p->max,
                p->def);
    }
}

void bn_options_print_swarm_wide(void *file)
{
    FILE *f = file;
    const char *sep = "";
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++)
        if (s_table[i].scope == SWARM) {
            fprintf(f, "%s%s", sep, s_table[i].name);
            sep = " ";
        }
    for (size_t i = 0; bn_rule_param_at(i); i++)
        fprintf(f, " %s", bn_rule_param_at(i)->name);
    fputc('\n', f);
}

bool bn_options_is_swarm_wide(const char *name)
{
    const s_row_t *r = s_find(name);
    return (r && r->scope == SWARM) || (!r && bn_rule_param_find(name));
}

bool bn_options_is_flag(const char *name)
{
    const s_row_t *r = s_find(name);
    return r && r->type == T_BOOL;
}

/* Does the blank-separated list `of` name `what` (or is it "*")? */
static bool s_of(const char *of, const char *what)
{
    if (!of)
        return false;
    if (strcmp(of, "*") == 0)
        return true;
    size_t len = strlen(what);
    for (const char *p = of; (p = strstr(p, what)) != NULL; p += len)
        if ((p == of || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return true;
    return false;
}

/* `byznode attacks`: one line per attack with the options that tune it. */
void bn_options_print_attacks(void *file)
{
    FILE *f = file;
    bn_options_t d;
    bn_options_default(&d);
    const char *names[64];
    uint32_t n = s_choices(T_ATTACK, names, 64);
    fprintf(f, "attacks (--attack NAME), their parameters (--NAME default [range]); docs/attacks.md:\n");
    for (uint32_t k = 0; k < n; k++) {
        fprintf(f, "  %-12s", names[k]);
        for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++) {
            const s_row_t *r = &s_table[i];
            if (!r->of)
                continue;
            /* "*": every attack that uses the honest models of the round */
            bool takes = strcmp(r->of, "*") == 0 ? bn_attack_needs_honest((bn_attack_kind_t) k)
                                                 : s_of(r->of, names[k]);
            if (!takes)
                continue;
            char def[64], range[64];
            s_format_short(&d, r, def, sizeof def);
            s_range(r, range, sizeof range);
            fprintf(f, "  --%s %s%s", r->name, def, range);
        }
        fputc('\n', f);
    }
}

void bn_options_to_json(const bn_options_t *o, void *file)
{
    FILE *f = file;
    fputc('{', f);
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++) {
        const s_row_t *r = &s_table[i];
        const char *at = (const char *) o + r->offset;
        char key[64], text[BN_PATH_MAX + 8];
        snprintf(key, sizeof key, "%s", r->name);
        for (char *c = key; *c; c++)
            if (*c == '-')
                *c = '_';
        fprintf(f, "%s\"%s\": ", i ? ", " : "", key);
        switch (r->type) {
        case T_U32:
        case T_U64:
        case T_BOOL:
            s_format(o, r, text, sizeof text);
            fputs(text, f);
            break;
        case T_F32:
            bn_json_number(f, *(const float *) at, 9);
            break;
        case T_F64:
            bn_json_number(f, *(const double *) at, 17);
            break;
        default:
            s_format(o, r, text, sizeof text);
            bn_json_string(f, text);
            break;
        }
    }
    /* every rule parameter, with the value the rule uses (set or default) */
    for (size_t i = 0; bn_rule_param_at(i); i++) {
        const bn_rule_param_t *p = bn_rule_param_at(i);
        char key[64];
        snprintf(key, sizeof key, "%s", p->name);
        for (char *c = key; *c; c++)
            if (*c == '-')
                *c = '_';
        fprintf(f, ", \"%s\": ", key);
        bn_json_number(f, bn_rule_opts_get(&o->rule, p->name), 9);
    }
    fputc('}', f);
}

/* FNV-1a-64 over "name=value\n" of every swarm-wide row, in table order,
 * values as s_format writes them, then bn_mix64. */
uint64_t bn_options_fingerprint(const bn_options_t *o)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++) {
        const s_row_t *r = &s_table[i];
        if (r->scope != SWARM)
            continue;
        char text[BN_PATH_MAX + 80];
        char value[BN_PATH_MAX + 8];
        s_format(o, r, value, sizeof value);
        int len = snprintf(text, sizeof text, "%s=%s\n", r->name, value);
        for (int k = 0; k < len && k < (int) sizeof text; k++) {
            h ^= (unsigned char) text[k];
            h *= 0x100000001b3ULL;
        }
    }
    /* the rule's parameters: those it reads, with their effective values */
    char rule[1024];
    int len = bn_rule_opts_canon(&o->rule, rule, sizeof rule);
    for (int k = 0; k < len && k < (int) sizeof rule - 1; k++) {
        h ^= (unsigned char) rule[k];
        h *= 0x100000001b3ULL;
    }
    return bn_mix64(h);
}

int bn_options_load(bn_options_t *o, const bn_swarm_t *swarm, int argc, char **argv, int first,
                    char *err, size_t errlen)
{
    bn_options_default(o);
    char msg[512];
    uint32_t n_file = swarm->n_options;
    for (uint32_t i = 0; i < n_file; i++)
        if (bn_options_set(o, swarm->option_names[i], swarm->option_values[i], msg, sizeof msg) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "swarm file: %s", msg);
    bn_options_t file = *o;
    int rc = bn_options_parse_argv(o, argc, argv, first, err, errlen);
    if (rc != BN_OK)
        return rc;
    /* A swarm-wide option the swarm file sets is the swarm's: a node that
     * disagrees would drop (and be dropped by) everybody.  One the file does
     * not set may come from the command line; the configuration fingerprint
     * in every message then tells hosts that disagree apart. */
    for (uint32_t i = 0; i < n_file; i++) {
        const char *name = swarm->option_names[i];
        const s_row_t *r = s_find(name);
        if (!r && bn_rule_param_find(name)) {
            double a = bn_rule_opts_get(&file.rule, name), b = bn_rule_opts_get(&o->rule, name);
            if (a != b)
                return bn_fail(err, errlen, BN_EARG, "--%s %g: the swarm file sets this swarm-wide option "
                               "to %g; change it there, for every host", name, b, a);
            continue;
        }
        if (!r || r->scope != SWARM)
            continue;
        char a[BN_PATH_MAX + 8], b[BN_PATH_MAX + 8];
        s_format(&file, r, a, sizeof a);
        s_format(o, r, b, sizeof b);
        if (strcmp(a, b) != 0) {
            s_format_short(&file, r, a, sizeof a);
            s_format_short(o, r, b, sizeof b);
            return bn_fail(err, errlen, BN_EARG, "--%s %s: the swarm file sets this swarm-wide option "
                           "to %s; change it there, for every host", r->name, b, a);
        }
    }
    return bn_options_finish(o, swarm->n, err, errlen);
}
