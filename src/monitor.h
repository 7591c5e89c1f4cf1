/*  monitor.h -- the swarm's metrics collector (`byznode monitor`).
 *
 *  Binds the swarm file's monitor endpoint and receives every node's REPORT
 *  (metrics, and the model of honest nodes) after each epoch.  An epoch is
 *  closed when every node has reported it, or when `grace` seconds passed
 *  since the swarm moved on (a report of a later epoch), or at shutdown; then
 *  the monitor computes consensus error (eq. 3) over the honest models, the
 *  honest accuracy band and the share of weight honest nodes gave Byzantine
 *  neighbours, prints one line, and rewrites DIR/summary.json and
 *  DIR/epochs.csv, so results can be read live and afterwards.  Everything a
 *  report says is validated; a bad report is dropped and counted.
 */
#ifndef BN_MONITOR_H
#define BN_MONITOR_H

#include <signal.h>

#include "common.h"

typedef struct {
    const char *swarm_path;
    const char *out_dir;
    const char *key_path;       /* CURVE secret key of the monitor, NULL = plain */
    double      grace;          /* seconds, default 20                           */
    bool        quiet;
} bn_monitor_opts_t;

/* Runs until every epoch of the run is closed or *stop is set.  Returns BN_OK
 * or an error code after printing a one-line reason. */
int bn_monitor_run(const bn_monitor_opts_t *opts, volatile sig_atomic_t *stop);

#endif
