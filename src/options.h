/*  options.h -- every run option of a node, as one table.
 *
 *  The same table serves the command line (--name value) and the swarm file's
 *  `option name value` lines, so a swarm spread over hosts is configured by
 *  the file alone.  Each row (options.c) has a name, a type, a range, a
 *  default, a scope and a help text; help, defaults, the JSON writer, the
 *  configuration fingerprint and `byznode rules` / `byznode attacks` are
 *  generated from the rows.  A bad value gets one line naming the option, the
 *  value, the accepted range or choices and, for a near miss, a did-you-mean.
 *
 *  Scope: a swarm-wide option must agree on every host (docs/deployment.md
 *  lists them; `byznode node --help` marks them); a node-local one is that
 *  node's business (id, key, out, data paths, attack, timeouts, faults, ...).
 *  Precedence: defaults < swarm file < command line, except that a command
 *  line may not change a swarm-wide option the swarm file sets
 *  (bn_options_load refuses it).  One the swarm file leaves unset may come
 *  from the command line; the fingerprint then tells disagreeing hosts apart.
 */
#ifndef BN_OPTIONS_H
#define BN_OPTIONS_H

#include "common.h"
#include "model.h"
#include "partition.h"
#include "aggregate.h"
#include "attack.h"
#include "shm.h"
#include "swarmfile.h"

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
    bool     attack_set;                /* --attack given (even none): a Byzantine id needs it */
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
    bn_shm_mode_t shm;                  /* same-host models through shared memory (shm.h) */
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

/* The node's whole configuration, as `byznode node` builds it: defaults, then
 * the swarm file's `option` lines, then argv[first..argc), then
 * bn_options_finish(swarm->n).  BN_EARG with one line in err on the first bad
 * value ("swarm file: ..." for one of the file), and when the command line
 * changes a swarm-wide option that the swarm file sets ("--lr 0.2: the swarm
 * file sets this swarm-wide option to 0.1; ..."). */
int bn_options_load(bn_options_t *o, const bn_swarm_t *swarm, int argc, char **argv, int first,
                    char *err, size_t errlen);

/* Prints the table for --help: one line per option with its help, range,
 * choices, default, and "[swarm-wide]" for the swarm-wide ones. */
void bn_options_print_help(void *file);

/* Prints the swarm-wide option names on one line, blank-separated. */
void bn_options_print_swarm_wide(void *file);

/* `byznode attacks`: one line per attack name, from the attack module's name
 * table, with the options that tune it and their defaults and ranges.
 * (`byznode rules` is bn_rule_list, aggregate.h.) */
void bn_options_print_attacks(void *file);

/* Is `name` (without dashes) a swarm-wide option?  A boolean flag? */
bool bn_options_is_swarm_wide(const char *name);
bool bn_options_is_flag(const char *name);

/* The names among names[0..n) closest to `word` by edit distance, when close
 * enough to be a typo (1 edit for words of up to 4 letters, else a third of
 * the word, at least 2), joined by " or " into out; returns how many (0:
 * none close, out = ""). */
size_t bn_options_suggest(const char *word, const char *const *names, size_t n, char *out, size_t cap);

/* The configuration fingerprint: a 64-bit hash of every swarm-wide option,
 * generated from the table (FNV-1a of "name=value\n" per swarm-wide row in
 * table order, then bn_mix64), so that a message or checkpoint from a
 * differently configured node is recognised.  Call it on finished options
 * (bn_options_finish resolves min-degree 0 and trim from --byzantine).
 * Node-local options do not enter. */
uint64_t bn_options_fingerprint(const bn_options_t *o);

/* Writes every option as a JSON object (for summary.json's "config"): one
 * key per row, the option name with '-' as '_' (round_timeout, fault_delay,
 * local_steps, ...), numbers as numbers (non-finite: null), names and paths
 * as strings. */
void bn_options_to_json(const bn_options_t *o, void *file);

#endif
