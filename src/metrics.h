/*  metrics.h -- what a node reports each epoch, and consensus error (eq. 3).
 *
 *  A node fills one bn_report_t per epoch, writes it as a JSON line to its own
 *  out directory (if any) and sends it to the monitor as a MessagePack map (the
 *  middle frame of a REPORT message, docs/metrics.md).  The report's weight
 *  array is the aggregation telemetry: the mean share of the update each node
 *  got from this node over the epoch's rounds.  The node never knows who is
 *  Byzantine; the monitor, which knows the roles, turns it into the share of
 *  weight that went to Byzantine neighbours.
 *
 *  One key table in metrics.c names every field once: the MessagePack
 *  packer, the decoder and the JSON writer all walk it, so the wire map and
 *  the JSON line use the same names (docs/metrics.md lists them with their
 *  types).  The decoder is strict about what it knows and tolerant of what
 *  it does not: every key of the table is required exactly once with its
 *  type, unknown keys are skipped.
 */
#ifndef BN_METRICS_H
#define BN_METRICS_H

#include <stdio.h>
#include <msgpack.h>

#include "common.h"
#include "wire.h"

/* Largest n_nodes (length of `weight`) a report may carry. */
#define BN_REPORT_MAX_NODES 65536u
/* Largest metrics frame a node produces or the monitor accepts: the fixed
 * keys take under 1 KB, each weight entry at most 5 bytes (float32). */
#define BN_REPORT_MAX_BYTES (4096u + 5u * BN_REPORT_MAX_NODES)
/* Attack names are [a-z0-9-], shorter than this. */
#define BN_REPORT_ATTACK_MAX 24

typedef struct {
    uint32_t node, epoch, n_nodes;
    bool     honest, final, resumed;
    char     attack[BN_REPORT_ATTACK_MAX];
    double   accuracy;          /* fraction; NAN when not evaluated this epoch */
    double   test_loss, train_loss;
    uint32_t eval_images;
    uint64_t bytes_sent, bytes_received, msgs_sent, msgs_received, send_dropped;
    uint64_t rounds, rounds_timed_out, missing;   /* missing = neighbour messages not there at aggregation */
    uint64_t max_rss_kb;                          /* peak resident memory of the process so far */
    uint64_t fault_dropped, fault_delayed;       /* injected on outgoing messages (fault.h) */
    uint64_t shm_sent, shm_received;             /* same-host models by reference (shm.h) */
    uint64_t drops[BN_DROP_COUNT];
    uint64_t rule_nonfinite;
    double   t_compute, t_wait, t_aggregate, t_encode, t_eval, t_epoch;
    /* CPU seconds: of the main thread in each phase above, and of the whole
     * process (every thread, user + system) over the epoch; context switches
     * of the process over the epoch (getrusage) */
    double   cpu_compute, cpu_aggregate, cpu_encode, cpu_eval, cpu_process;
    uint64_t ctx_voluntary, ctx_involuntary;
    uint64_t topology_fp;
    uint64_t config_fp;         /* bn_options_fingerprint of the sender's swarm-wide options */
    uint32_t degree;
    /* liveness (docs/protocol.md): rounds skipped to catch up with the swarm,
     * neighbours given up on (not waited for) and taken back this epoch */
    uint64_t rounds_skipped, peers_given_up, peers_restored;
    float   *weight;            /* n_nodes entries, owned by whoever filled the report */
} bn_report_t;

/* Packs r into pk as a MessagePack map: every key of the table, `weight` as
 * an array of n_nodes float32 (nil when r->weight is NULL). */
void bn_report_pack(const bn_report_t *r, msgpack_packer *pk);

/* r packed (bn_report_pack) into sb, which this initialises; the caller
 * destroys it (msgpack_sbuffer_destroy). */
void bn_report_encode(const bn_report_t *r, msgpack_sbuffer *sb);

/* Unpacks a report from buf[0..len), which must hold exactly one MessagePack
 * map.  BN_EFORMAT (r zeroed, nothing allocated) when: it is not a map; a key
 * is not a string; a known key appears twice or is missing; a value has the
 * wrong type or is out of its range (uint32 fields >= 2^32, negative
 * integers); a number that must be finite is not (only accuracy, test_loss
 * and train_loss may be NaN, meaning "not measured"; none may be infinite);
 * `dropped` has more than BN_DROP_COUNT entries; `weight` is not nil or an
 * array of exactly n_nodes finite numbers; n_nodes > BN_REPORT_MAX_NODES; the
 * attack name is not [a-z0-9-]; bytes follow the map.  Unknown keys are
 * skipped.  On BN_OK r->weight is malloc'd (caller frees) or NULL (nil).
 * Never reads past len. */
int bn_report_unpack(const void *buf, size_t len, bn_report_t *r);

/* One JSON object, no newline: the table's keys (epoch 1-based, the
 * fingerprints as 16 hex digits, `dropped` as an object of the non-zero
 * reasons by name), non-finite numbers as null, strings escaped.  Write
 * errors are left in f's error indicator (ferror). */
void bn_report_to_json(const bn_report_t *r, FILE *f);

/* Length of the one MessagePack object at the start of buf[0..len), or 0
 * when it is malformed, runs past len, or has a container (array, map)
 * declaring more elements than there are bytes left.  Run before
 * msgpack-c's unpacker, which allocates a container's element table from
 * the declared count before reading it: 5 bytes declaring 2^32 elements
 * would ask for 64 GB.  Non-recursive, reads nothing past len. */
size_t bn_msgpack_span(const void *buf, size_t len);

/* Consensus error of eq. (3) over m vectors of dim floats:
 * (1/m) sum_i ||x_i - xbar||^2 / ||xbar||^2.  mean_scratch holds dim doubles.
 * Returns 0 for m == 1, NAN for m == 0 (no model: undefined), INFINITY if
 * xbar = 0 and the x_i differ. */
double bn_consensus_error(const float *const *x, uint32_t m, size_t dim, double *mean_scratch);

#endif
