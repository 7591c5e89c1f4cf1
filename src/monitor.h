/*  monitor.h -- the swarm's metrics collector (`byznode monitor`).
 *
 *  Binds the swarm file's monitor endpoint and receives every node's REPORT
 *  (metrics, and the model of honest nodes) after each epoch.  It trusts
 *  nothing a report says: what it must know it takes from the swarm file
 *  (n, the roles drawn from seed and byzantine, the model and so its size,
 *  rounds per epoch R from train-size, batch and local-steps, the round
 *  timeout, the configuration fingerprint), and every field of a REPORT is
 *  checked against it (docs/metrics.md, "What the monitor accepts").  A bad
 *  report is dropped and counted under one bn_monitor_drop_t reason (logged
 *  once per sender and reason); the counts go into summary.json.
 *
 *  Epochs.  Node i's deadline for epoch e is the time its report of the
 *  last epoch p < e it reported arrived, plus (e - p) epoch budgets, where
 *  an epoch budget is R round timeouts plus `grace` (no report yet: from the
 *  monitor's start, plus two more round timeouts for the first round).
 *  Epoch e closes when every honest node has reported it or is past its
 *  deadline for it -- never because some node reported a later epoch.  A
 *  closed epoch gets its figures: consensus error (eq. 3) over the honest
 *  models (null when there is none), the honest accuracy band, the share of
 *  weight honest nodes gave Byzantine neighbours; the monitor prints one
 *  line and rewrites DIR/summary.json and DIR/epochs.csv, each replaced
 *  whole or not at all (outfile.h).  A node is finished when its report of
 *  the last epoch arrived, failed when its deadline for it passed.  The
 *  monitor returns when every epoch is closed and every node finished or
 *  failed.
 *
 *  Restart.  Every accepted report and every closed epoch is appended to
 *  DIR/monitor.journal; a monitor started on the same DIR for the same swarm
 *  and configuration replays it first, so its summary keeps the epochs and
 *  reports from before the restart.  (Models are not journaled: an epoch
 *  that was open at the restart gets its consensus error from the models
 *  received after it; `models` in summary.json says how many.)
 *
 *  Bounds: a frame larger than the model (payload), BN_REPORT_MAX_BYTES
 *  (metrics) or BN_WIRE_HEADER_MAX (header) is refused by libzmq before it
 *  is buffered (ZMQ_MAXMSGSIZE) and, should one get through, dropped as
 *  `size`.  Memory: n * E cells of one report's JSON each, plus the models
 *  of the open epochs.
 */
#ifndef BN_MONITOR_H
#define BN_MONITOR_H

#include <signal.h>

#include "common.h"

typedef struct {
    const char *swarm_path;
    const char *out_dir;
    const char *key_path;       /* CURVE secret key of the monitor, NULL = plain  */
    double      grace;          /* seconds added to every epoch budget, default 20 */
    uint32_t    cores;          /* CPUs of the machine(s) the swarm runs on, for the
                                 * efficiency; 0 = this host's online CPUs     */
    bool        quiet;
} bn_monitor_opts_t;

/* Why a REPORT was dropped, in the order the checks run. */
typedef enum {
    BN_MDROP_NONE = 0,
    BN_MDROP_FRAMES,      /* not exactly 3 frames                                    */
    BN_MDROP_SIZE,        /* a frame larger than its bound                           */
    BN_MDROP_HEADER,      /* header frame is not a valid header (bn_wire_decode)     */
    BN_MDROP_VERSION,     /* another protocol version                                */
    BN_MDROP_KIND,        /* not a REPORT                                            */
    BN_MDROP_SWARM,       /* another swarm's                                         */
    BN_MDROP_SENDER,      /* sender id outside 0..n-1, or origin != sender           */
    BN_MDROP_AUTH,        /* CURVE: sender id is not the authenticated one           */
    BN_MDROP_EPOCH,       /* epoch >= E, or its round outside e*R .. (e+1)*R         */
    BN_MDROP_DTYPE,       /* element type other than float32                         */
    BN_MDROP_METRICS,     /* metrics frame does not decode (bn_report_unpack)        */
    BN_MDROP_MISMATCH,    /* metrics' node, epoch or topology differ from the header */
    BN_MDROP_CONFIG,      /* header "c" or metrics' configuration fingerprint
                             differs from the swarm file's                           */
    BN_MDROP_ROLE,        /* honest flag or attack contradicts the swarm's roles     */
    BN_MDROP_RANGE,       /* a metric out of range (n_nodes, rounds, accuracy, ...)  */
    BN_MDROP_WEIGHT,      /* honest report without weights, or one outside [0, 1]    */
    BN_MDROP_EMPTY,       /* honest report without its model                         */
    BN_MDROP_DIM,         /* model size differs from the swarm's model, or a
                             Byzantine report carries a model                        */
    BN_MDROP_DUPLICATE,   /* second report of a (node, epoch)                        */
    BN_MDROP_LATE,        /* honest report of an epoch already closed                */
    BN_MDROP_COUNT
} bn_monitor_drop_t;

/* Short stable name ("dim", "late", ...), used in logs and summary.json. */
const char *bn_monitor_drop_name(bn_monitor_drop_t why);

typedef struct bn_monitor_t bn_monitor_t;

/* One frame of a received message, borrowed for the duration of a call. */
typedef struct {
    const void *data;
    size_t      size;
} bn_monitor_frame_t;

/* The figures of one epoch (valid once closed).  NAN where undefined:
 * accuracies without an honest evaluation, consensus error without an
 * honest model, byzantine_weight without honest weights. */
typedef struct {
    bool     closed;
    uint32_t honest_reported;   /* honest nodes whose report was accepted   */
    uint32_t models;            /* honest finite models in eq. (3)          */
    double   mean_acc, min_acc, max_acc, consensus, byz_share;
    double   sec_per_round, t_compute, t_wait, t_aggregate, t_encode;   /* per round, honest mean */
    uint64_t max_rss_kb;        /* largest peak RSS of any node that reported */
    uint64_t sum_rss_kb;        /* sum of the peak RSS of the nodes that reported */
    /* The machine's share that went to learning (docs/metrics.md), over the
     * nodes whose reports arrived live (not replayed from the journal):
     * wall = last report's arrival - last node's epoch start (arrival -
     * t_epoch); cpu_phase = their main threads' CPU seconds in compute,
     * aggregate, encode, eval; cpu_nodes = their processes' CPU seconds;
     * efficiency = sum(cpu_phase) / (wall x cores).  NAN without a live
     * report or with wall 0. */
    double   wall, cpu_phase[4], cpu_nodes, efficiency;
} bn_monitor_epoch_t;

typedef enum { BN_NODE_RUNNING, BN_NODE_FINISHED, BN_NODE_FAILED } bn_monitor_node_state_t;

/* Loads the swarm file and its options, works out what every node must
 * send, and replays DIR/monitor.journal if it belongs to this swarm and
 * configuration (another run's journal is replaced).  `now` is bn_now() (a
 * parameter so that tests control time).  Binds nothing.  NULL with a
 * one-line reason in err. */
bn_monitor_t *bn_monitor_new(const bn_monitor_opts_t *opts, double now, char *err, size_t errlen);
void bn_monitor_destroy(bn_monitor_t **self_p);

/* The same as destroying m and creating it again from the same options at
 * `now` (a restart on the same DIR: DIR/monitor.journal replayed), without
 * reading the swarm file again.  BN_OK, or an error as bn_monitor_new's;
 * after an error m can only be destroyed or reset.  (The fuzzer's restart
 * per input.) */
int bn_monitor_reset(bn_monitor_t *m, double now, char *err, size_t errlen);
/* Frees what reports brought (their JSON, open models), forgets every
 * report, epoch and drop count, closes the journal; writes nothing.  m then
 * takes no report until bn_monitor_reset (a report would be counted but
 * not journaled).  (The fuzzer's end of an input: every allocation of the
 * input is freed, so its leak check stays on.) */
void bn_monitor_clear(bn_monitor_t *m);

/* Takes one received message: frames[0..n_frames) (more than 3 = a
 * multipart the transport truncated), auth_id the CURVE user id or
 * BN_AUTH_NONE.  Returns BN_MDROP_NONE when the report was accepted, else
 * the reason it was dropped (and counted).  May close the report's epoch. */
bn_monitor_drop_t bn_monitor_accept(bn_monitor_t *m, const bn_monitor_frame_t *frames, int n_frames,
                                    uint32_t auth_id, double now);

/* Closes the epochs whose deadlines passed.  BN_OK, or BN_EIO with a
 * one-line reason when a result file or the journal could not be written
 * (the monitor cannot do its job: stop and exit non-zero). */
int bn_monitor_tick(bn_monitor_t *m, double now, char *err, size_t errlen);

/* True when every epoch is closed and every node finished or failed. */
bool bn_monitor_done(const bn_monitor_t *m, double now);

/* Final write.  stopped: interrupted before done, so the epochs that have
 * any report are closed with what they have, and a node whose last report
 * is older than the last closed epoch counts as failed.  BN_OK or BN_EIO. */
int bn_monitor_finish(bn_monitor_t *m, double now, bool stopped, char *err, size_t errlen);

/* Introspection (tests, logs). */
const bn_monitor_epoch_t *bn_monitor_epoch(const bn_monitor_t *m, uint32_t e);
bn_monitor_node_state_t bn_monitor_node_state(const bn_monitor_t *m, uint32_t i, double now);
const uint64_t *bn_monitor_drops(const bn_monitor_t *m);   /* BN_MDROP_COUNT counters */
size_t bn_monitor_model_dim(const bn_monitor_t *m);
uint32_t bn_monitor_rounds_per_epoch(const bn_monitor_t *m);
uint64_t bn_monitor_config_fp(const bn_monitor_t *m);
double bn_monitor_deadline(const bn_monitor_t *m, uint32_t i, uint32_t e);

/* The command: new, bind, receive until done or *stop, finish.  After a
 * stop it first reads the messages already on their way (until the socket
 * is quiet for 1 s, at most 10 s), so that a launcher that stops it right
 * after the last node exited loses no report.  Returns
 * BN_OK, or an error code after printing a one-line reason. */
int bn_monitor_run(const bn_monitor_opts_t *opts, volatile sig_atomic_t *stop);

#endif
