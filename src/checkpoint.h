/*  checkpoint.h -- a node's resumable state, written atomically, trusted
 *  only for the run that wrote it.
 *
 *  DIR/checkpoint-<id>.bin holds the configuration fingerprint of the run
 *  (bn_options_fingerprint), the model, the SGD momentum, the position (next
 *  epoch, next global round), the random states and the batch order.  It is
 *  written to a temporary file, flushed, fsync-ed and renamed over the old
 *  one (then the directory is fsync-ed), and every step is checked: a failed
 *  write is an error that leaves the previous checkpoint as it was, never a
 *  short or empty file.  Loading checks magic, version, sizes and a 64-bit
 *  checksum before touching the caller's buffers, then that the checkpoint
 *  belongs to this run: same fingerprint (another --batch, --seed, --epochs,
 *  ... is refused) and an epoch within the run.
 *
 *  A checkpoint whose next epoch equals the run's epoch count says the node
 *  finished: a rerun does nothing (it neither retrains the last epoch nor
 *  writes it to the jsonl again).  The node writes one after its last epoch
 *  whenever it writes checkpoints at all.
 */
#ifndef BN_CHECKPOINT_H
#define BN_CHECKPOINT_H

#include "common.h"
#include "rng.h"

typedef struct {
    uint32_t epoch;           /* next epoch to run (0-based); = epochs: finished */
    uint64_t round;           /* next global round                          */
    size_t   dim;
    float   *x;               /* dim floats (borrowed; filled on load)      */
    float   *velocity;        /* dim floats or NULL (borrowed)              */
    bool     sgd_started;
    bn_rng_t batch_rng, attack_rng;
    uint32_t *order;          /* order_n entries (borrowed; filled on load) */
    uint32_t order_n, order_pos;
    uint64_t config_fp;       /* bn_options_fingerprint of the run that wrote it */
} bn_checkpoint_t;

/* Writes DIR/checkpoint-<id>.bin atomically (see above).  BN_EIO with the
 * failing step and errno text in err; the previous file is then intact and
 * no temporary file is left. */
int bn_checkpoint_save(const char *dir, uint32_t id, const bn_checkpoint_t *ck,
                       char *err, size_t errlen);

/* Fills ck (whose dim, x, velocity, order and order_n say what is expected)
 * from DIR/checkpoint-<id>.bin if it belongs to this run.
 *   BN_OK        loaded; ck->epoch == epochs means the node already finished
 *   BN_EIO       there is no checkpoint (or it cannot be read)
 *   BN_EFORMAT   corrupt, or of a different model or shard
 *   BN_EMISMATCH written with another configuration (fingerprint differs
 *                from config_fp) or its epoch is beyond the run's `epochs`
 * On any error ck's buffers are untouched; the caller warns and starts fresh. */
int bn_checkpoint_load(const char *dir, uint32_t id, uint64_t config_fp, uint32_t epochs,
                       bn_checkpoint_t *ck, char *err, size_t errlen);

/* The longest jsonl line the log functions below read, and how much of the
 * end of a log bn_checkpoint_log_last reads: 2 MiB.  The longest line a node
 * writes is ~1 KB of fixed keys plus at most 14 bytes a weight entry for
 * BN_REPORT_MAX_NODES (65536) nodes, under 1 MiB. */
#define BN_CHECKPOINT_LOG_TAIL (2u << 20)

/* The per-epoch log of a resumed node (node-<id>.jsonl, one JSON object per
 * line with an "epoch" key, 1-based): keeps the leading lines of epochs
 * 1..epochs_done and drops the rest (an epoch logged after the checkpoint
 * was written, which the resumed node runs again), rewriting the file
 * atomically.  A line longer than BN_CHECKPOINT_LOG_TAIL or with a NUL byte
 * goes with everything after it, as a torn one does (so memory is bounded
 * by the lines kept).  A missing file is fine (BN_OK).  BN_EIO on a failed
 * write (the file is then as it was). */
int bn_checkpoint_trim_log(const char *path, uint32_t epochs_done, char *err, size_t errlen);

/* The epoch (1-based) of the last complete line ('\n'-terminated, no NUL
 * byte) of such a log that has one, looking only at its last
 * BN_CHECKPOINT_LOG_TAIL bytes (of a file that is not a regular file: its
 * first BN_CHECKPOINT_LOG_TAIL bytes).  A line cut by the start of that
 * window does not count.  0 when the file is missing or no line counts. */
uint32_t bn_checkpoint_log_last(const char *path);

#endif
