/*  options.h -- every run option of a node, as one table.
 *
 *  The same table serves the command line (--name value) and the swarm file's
 *  `option name value` lines, so a swarm spread over hosts is configured by
 *  the file alone.  Each row has a type, a range and a default; a bad value
 *  gets a message naming the option, the value and the accepted range.
 *  Precedence: defaults < swarm file < command line.
 */
#ifndef BN_OPTIONS_H
#define BN_OPTIONS_H

#include "common.h"
#include "model.h"
#include "partition.h"
#include "aggregate.h"
#include "attack.h"

#define BN_PATH_MAX 512

typedef struct {
    /* who and where */
    char     swarm_path[BN_PATH_MAX];   /* swarm file (required for node and monitor) */
    uint32_t id;                        /* this node's id                             */
    char     key_path[BN_PATH_MAX];     /* CURVE secret key file, "" = plain          */
    char     out_dir[BN_PATH_MAX];      /* per-node metrics and checkpoints, "" = none */
    /* learning (Algorithm 1) */
    bn_model_kind_t model;
    uint32_t epochs, batch, local_steps;
    float    lr, weight_decay, momentum;
    uint64_t seed;
    uint32_t blas_threads;
    /* data */
    char     data_dir[BN_PATH_MAX];     /* IDX files: train-* and t10k-*              */
    char     train_images[BN_PATH_MAX]; /* a node's own IDX pair instead of a shard   */
    char     train_labels[BN_PATH_MAX];
    bn_partition_kind_t partition;
    double   alpha;
    uint32_t shards_per_node;
    uint32_t train_size;                /* swarm-wide training-set size: sets rounds per epoch */
    uint32_t eval_every;                /* evaluate every k epochs (last always)      */
    uint32_t eval_subset;               /* images of the test set, 0 = all            */
    /* topology */
    double   p;
    uint32_t min_degree;                /* 0 = 2b + 1                                 */
    bool     time_varying;
    char     topology_file[BN_PATH_MAX];
    /* aggregation */
    bn_rule_opts_t rule;
    bool     trim_set;                  /* --trim given: else b of the rules = --byzantine */
    /* adversary */
    uint32_t byzantine;                 /* b: how many nodes of the swarm attack      */
    bn_attack_opts_t attack;
    bool     omniscient;                /* attackers pool what they hear              */
    /* runtime */
    uint32_t round_timeout_ms;
    uint32_t future_rounds;             /* early messages kept per peer               */
    uint32_t checkpoint_every;          /* epochs, 0 = never                          */
    double   fault_drop;                /* injected loss on outgoing messages         */
    uint32_t fault_delay_ms;            /* injected delay on outgoing messages        */
    uint32_t verbose;
} bn_options_t;

void bn_options_default(bn_options_t *o);

/* Sets option `name` (without dashes) from text.  BN_EARG with a message in err
 * (naming the option, the value and the accepted range) if unknown or invalid. */
int bn_options_set(bn_options_t *o, const char *name, const char *value, char *err, size_t errlen);

/* Parses argv[first..argc) as --name value pairs (and --flag for booleans).
 * BN_EARG with a message on the first bad one. */
int bn_options_parse_argv(bn_options_t *o, int argc, char **argv, int first, char *err, size_t errlen);

/* Checks cross-option constraints after all sources were applied (fills
 * derived defaults like min_degree = 2b + 1). */
int bn_options_finish(bn_options_t *o, uint32_t n_nodes, char *err, size_t errlen);

/* Prints the table (name, default, range, help) for --help. */
void bn_options_print_help(void *file);

/* The configuration fingerprint: a 64-bit hash of every swarm-wide option
 * (those that must agree on every host: docs/deployment.md lists them), so
 * that a message or checkpoint from a differently configured node is
 * recognised.  Node-local options (id, key, out, verbose, ...) do not enter. */
uint64_t bn_options_fingerprint(const bn_options_t *o);

/* Writes the options as a JSON object (for summary.json's "config"). */
void bn_options_to_json(const bn_options_t *o, void *file);

#endif
