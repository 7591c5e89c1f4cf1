/*  node_report.h -- a node's per-epoch report (metrics.h's bn_report_t):
 *  built over the epoch, written as one JSON line to <out>/node-<id>.jsonl
 *  and sent as a REPORT to the monitor (docs/protocol.md, "REPORT").
 *
 *  bn_node_report_begin resets the epoch's counters (it keeps rep.resumed);
 *  bn_node_report_end evaluates (every eval_every epochs and the last),
 *  fills the counters from the transport and inbox deltas, writes the line
 *  (fwrite, fflush checked) and sends the REPORT (an honest node's carries
 *  its model; an attacker's an empty payload with dim 0).  A failed jsonl
 *  write returns BN_EIO after a one-line error: results that cannot be kept
 *  end the run.
 */
#ifndef BN_NODE_REPORT_H
#define BN_NODE_REPORT_H

#include "node_state.h"

void bn_node_report_begin(bn_node_t *nd);
/* BN_OK, or BN_EIO when the jsonl line could not be written. */
int bn_node_report_end(bn_node_t *nd);

#endif
