/*  options.c -- the option table; see options.h. */
#include "options.h"
#include "dataset.h"
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_U32, T_U64, T_F32, T_F64, T_BOOL, T_PATH, T_MODEL, T_PART, T_RULE, T_ATTACK } s_type_t;

typedef struct {
    const char *name;
    s_type_t    type;
    size_t      offset;
    double      min, max;
    const char *help;
} s_row_t;

#define O(field) offsetof(bn_options_t, field)

static const s_row_t s_table[] = {
    { "swarm",            T_PATH,  O(swarm_path),         0, 0,      "swarm file shared by all nodes" },
    { "id",               T_U32,   O(id),                 0, 1e6,    "this node's id in the swarm file" },
    { "key",              T_PATH,  O(key_path),           0, 0,      "CURVE secret key file (byznode keygen)" },
    { "out",              T_PATH,  O(out_dir),            0, 0,      "directory for this node's metrics and checkpoints" },
    { "model",            T_MODEL, O(model),              0, 0,      "cnn | mlp | logreg" },
    { "epochs",           T_U32,   O(epochs),             1, 1e5,    "training epochs" },
    { "batch",            T_U32,   O(batch),              1, 4096,   "mini-batch size" },
    { "local-steps",      T_U32,   O(local_steps),        1, 1000,   "SGD steps between gossip rounds (tau)" },
    { "lr",               T_F32,   O(lr),                 0, 100,    "learning rate" },
    { "weight-decay",     T_F32,   O(weight_decay),       0, 1,      "L2 weight decay" },
    { "momentum",         T_F32,   O(momentum),           0, 0.9999, "SGD momentum (0 = none)" },
    { "seed",             T_U64,   O(seed),               0, 0,      "run seed: topology, partition, init, Byzantine set" },
    { "blas-threads",     T_U32,   O(blas_threads),       1, 256,    "OpenBLAS threads of this node" },
    { "data",             T_PATH,  O(data_dir),           0, 0,      "Fashion-MNIST IDX files, plain or .gz (default " BN_DATA_DIR_DEFAULT ")" },
    { "train-images",     T_PATH,  O(train_images),       0, 0,      "this node's own training images (IDX) instead of a shard" },
    { "train-labels",     T_PATH,  O(train_labels),       0, 0,      "this node's own training labels (IDX)" },
    { "partition",        T_PART,  O(partition),          0, 0,      "iid | shards | dirichlet" },
    { "alpha",            T_F64,   O(alpha),              1e-6, 1e6, "Dirichlet concentration" },
    { "shards-per-node",  T_U32,   O(shards_per_node),    1, 1000,   "label-sorted shards per node" },
    { "train-size",       T_U32,   O(train_size),         1, 1e9,    "training images in the whole swarm (sets rounds per epoch)" },
    { "eval-every",       T_U32,   O(eval_every),         1, 1e5,    "evaluate every k epochs (the last always)" },
    { "eval-subset",      T_U32,   O(eval_subset),        0, 1e7,    "test images per evaluation, 0 = all (last epoch: all)" },
    { "p",                T_F64,   O(p),                  0, 1,      "Erdos-Renyi edge probability" },
    { "min-degree",       T_U32,   O(min_degree),         0, 1e6,    "redraw until every degree >= this (0 = 2b+1)" },
    { "time-varying",     T_BOOL,  O(time_varying),       0, 1,      "a new graph every epoch" },
    { "topology",         T_PATH,  O(topology_file),      0, 0,      "edge-list file instead of Erdos-Renyi" },
    { "rule",             T_RULE,  O(rule.kind),          0, 0,      "aggregation rule (see docs/rules.md)" },
    /* the rules' own parameters (--c, --trim, ...) are rows of the rule
     * tables: bn_rule_param_find / bn_rule_opts_set (aggregate.h) */
    { "byzantine",        T_U32,   O(byzantine),          0, 1e6,    "number of Byzantine nodes in the swarm (b)" },
    { "attack",           T_ATTACK,O(attack.kind),        0, 0,      "this node's attack (none = honest)" },
    { "z",                T_F32,   O(attack.z),           -1e6, 1e6, "dlie: z" },
    { "ipm-epsilon",      T_F32,   O(attack.epsilon),     -1e6, 1e6, "ipm: epsilon" },
    { "gaussian-std",     T_F32,   O(attack.gaussian_std),0, 1e9,    "gaussian attack: std" },
    { "constant",         T_F32,   O(attack.value),       -1e30, 1e30, "constant attack: value" },
    { "omniscient",       T_BOOL,  O(omniscient),         0, 1,      "attackers pool every honest model they hear" },
    { "round-timeout",    T_U32,   O(round_timeout_ms),   1, 1e8,    "ms to wait for a round's neighbours" },
    { "future-rounds",    T_U32,   O(future_rounds),      1, 64,     "rounds ahead whose messages are kept" },
    { "checkpoint-every", T_U32,   O(checkpoint_every),   0, 1e5,    "epochs between checkpoints (0 = never)" },
    { "fault-drop",       T_F64,   O(fault_drop),         0, 1,      "injected drop probability on outgoing messages" },
    { "fault-delay",      T_U32,   O(fault_delay_ms),     0, 1e6,    "injected delay (ms) on outgoing messages" },
    { "verbose",          T_U32,   O(verbose),            0, 3,      "log level: 0 warn, 1 info, 2 debug" },
};

void bn_options_default(bn_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->model = BN_MODEL_CNN;
    o->epochs = 80;
    o->batch = 60;
    o->local_steps = 1;
    o->lr = 0.1f;
    o->weight_decay = 5e-4f;
    o->momentum = 0.0f;
    o->seed = 1;
    o->blas_threads = 1;
    snprintf(o->data_dir, sizeof o->data_dir, "%s", BN_DATA_DIR_DEFAULT);
    o->partition = BN_PART_IID;
    o->alpha = 0.5;
    o->shards_per_node = 2;
    o->train_size = 60000;
    o->eval_every = 1;
    o->p = 0.6;
    bn_rule_opts_default(&o->rule, BN_RULE_MEAN);
    bn_attack_opts_default(&o->attack, BN_ATTACK_NONE);
    o->round_timeout_ms = 30000;
    o->future_rounds = 4;
    o->verbose = 1;
}

static const s_row_t *s_find(const char *name)
{
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++)
        if (strcmp(s_table[i].name, name) == 0)
            return &s_table[i];
    return NULL;
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
        return bn_fail(err, errlen, BN_EARG, "unknown option --%s", name);
    char *at = (char *) o + r->offset;
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
    case T_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
            *(bool *) at = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(bool *) at = false;
        else
            return bn_fail(err, errlen, BN_EARG, "--%s: '%s' is not a boolean (true/false)", name, value);
        return BN_OK;
    case T_PATH:
        if (strlen(value) >= BN_PATH_MAX)
            return bn_fail(err, errlen, BN_EARG, "--%s: path longer than %d bytes", name, BN_PATH_MAX - 1);
        snprintf(at, BN_PATH_MAX, "%s", value);
        return BN_OK;
    case T_MODEL:
        if (bn_model_parse(value, (bn_model_kind_t *) at) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "--%s: unknown model '%s' (cnn, mlp, logreg)", name, value);
        return BN_OK;
    case T_PART:
        if (bn_partition_parse(value, (bn_partition_kind_t *) at) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "--%s: unknown partition '%s' (iid, shards, dirichlet)", name, value);
        return BN_OK;
    case T_RULE: {
        bn_rule_kind_t k;
        if (bn_rule_parse(value, &k) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "--%s: unknown rule '%s' (see byznode --help)", name, value);
        /* Keep the rule's own parameters if already set; only the kind changes. */
        o->rule.kind = k;
        return BN_OK;
    }
    case T_ATTACK: {
        bn_attack_kind_t k;
        if (bn_attack_parse(value, &k) != BN_OK)
            return bn_fail(err, errlen, BN_EARG, "--%s: unknown attack '%s' (see byznode --help)", name, value);
        o->attack.kind = k;
        return BN_OK;
    }
    }
bad:
    return bn_fail(err, errlen, BN_EARG, "--%s: '%s' is not a number", name, value);
range:
    return bn_fail(err, errlen, BN_EARG, "--%s: %s is outside the accepted range [%g, %g]",
                   name, value, r->min, r->max);
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
            return bn_fail(err, errlen, BN_EARG, "unknown option --%s (byznode node --help lists them)", name);
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
    if (o->min_degree == 0 && o->byzantine > 0)
        o->min_degree = 2 * o->byzantine + 1;
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
    return BN_OK;
}

void bn_options_print_help(void *file)
{
    FILE *f = file;
    bn_options_t d;
    bn_options_default(&d);
    for (size_t i = 0; i < BN_ARRAY_LEN(s_table); i++) {
        const s_row_t *r = &s_table[i];
        fprintf(f, "  --%-18s %s", r->name, r->help);
        if ((r->type == T_U32 || r->type == T_F32 || r->type == T_F64 || r->type == T_U64) && r->max > 0)
            fprintf(f, " [%g..%g]", r->min, r->max);
        fputc('\n', f);
    }
    bn_rule_print_params(f);
}

void bn_options_to_json(const bn_options_t *o, void *file)
{
    FILE *f = file;
    fprintf(f, "{\"model\": \"%s\", \"epochs\": %u, \"batch\": %u, \"local_steps\": %u, "
               "\"lr\": %g, \"weight_decay\": %g, \"momentum\": %g, \"seed\": %llu, "
               "\"partition\": \"%s\", \"p\": %g, \"min_degree\": %u, \"time_varying\": %s, "
               "\"rule\": \"%s\", \"c\": %g, \"trim\": %g, \"bucketing\": %g, "
               "\"byzantine\": %u, \"z\": %g, \"omniscient\": %s, \"round_timeout_ms\": %u, "
               "\"eval_every\": %u, \"eval_subset\": %u, \"fault_drop\": %g, \"fault_delay_ms\": %u",
            bn_model_name(o->model), o->epochs, o->batch, o->local_steps, o->lr, o->weight_decay,
            o->momentum, (unsigned long long) o->seed, bn_partition_name(o->partition), o->p,
            o->min_degree, o->time_varying ? "true" : "false",
            bn_rule_name(o->rule.kind), bn_rule_opts_get(&o->rule, "c"),
            bn_rule_opts_get(&o->rule, "trim"), bn_rule_opts_get(&o->rule, "bucketing"), o->byzantine,
            o->attack.z, o->omniscient ? "true" : "false", o->round_timeout_ms, o->eval_every,
            o->eval_subset, o->fault_drop, o->fault_delay_ms);
    fprintf(f, ", \"topology\": ");
    bn_json_string(f, o->topology_file);
    fputc('}', f);
}

/* FNV-1a over a canonical text of the swarm-wide fields. */
uint64_t bn_options_fingerprint(const bn_options_t *o)
{
    char buf[1024], rule[512];
    bn_rule_opts_canon(&o->rule, rule, sizeof rule);
    int len = snprintf(buf, sizeof buf,
        "model=%s epochs=%u batch=%u local_steps=%u lr=%.9g wd=%.9g momentum=%.9g seed=%llu "
        "partition=%s alpha=%.17g shards=%u train_size=%u p=%.17g min_degree=%u tv=%d topology=%s "
        "%s byzantine=%u omniscient=%d future=%u",
        bn_model_name(o->model), o->epochs, o->batch, o->local_steps, o->lr, o->weight_decay,
        o->momentum, (unsigned long long) o->seed, bn_partition_name(o->partition), o->alpha,
        o->shards_per_node, o->train_size, o->p, o->min_degree, o->time_varying, o->topology_file,
        rule, o->byzantine, o->omniscient, o->future_rounds);
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < len && i < (int) sizeof buf; i++) {
        h ^= (unsigned char) buf[i];
        h *= 1099511628211ull;
    }
    return h;
}
