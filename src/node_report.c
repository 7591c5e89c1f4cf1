/*  node_report.c -- the per-epoch report of a node; see node_report.h. */
#include "node_report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "attack.h"

void bn_node_report_begin(bn_node_t *nd)
{
    float *w = nd->rep.weight;
    bool resumed = nd->rep.resumed;
    memset(&nd->rep, 0, sizeof nd->rep);
    nd->rep.weight = w;
    nd->rep.resumed = resumed;
    memset(nd->weight_acc, 0, nd->n * sizeof(float));
    nd->train_loss_sum = 0;
    nd->train_steps = 0;
    nd->tr_at_epoch = *bn_transport_stats(nd->tr);
    nd->in_at_epoch = *bn_inbox_stats(nd->inbox);
    nd->shm_at_epoch.sent = nd->shm_sent;
    nd->shm_at_epoch.received = nd->shm ? bn_shm_stats(nd->shm)->received : 0;
    bn_proc_usage(&nd->use_at_epoch);
    nd->rep.t_epoch = bn_now();
}

/* The whole test set, streamed from the data files in chunks of 1,000 images
 * (a node keeps only its evaluation subset in memory): accuracy and loss
 * weighted by chunk size, as one bn_model_evaluate over all would give.
 * cpu: the CPU seconds of the forward passes alone (reading and inflating
 * the file is data loading, not evaluation work: docs/metrics.md). */
typedef struct { bn_node_t *nd; double correct, loss, cpu; uint32_t n; } s_eval_acc_t;

static void s_eval_chunk(const bn_dataset_t *view, void *ctx)
{
    s_eval_acc_t *a = ctx;
    double acc = NAN, loss = NAN, c0 = bn_cpu_now();
    bn_model_evaluate(a->nd->model, a->nd->x, view, NULL, view->n, &acc, &loss);
    a->cpu += bn_cpu_now() - c0;
    a->correct += acc * view->n;
    a->loss += loss * view->n;
    a->n += view->n;
}

static void s_evaluate_all(bn_node_t *nd, bn_report_t *r)
{
    s_eval_acc_t a = { nd, 0, 0, 0, 0 };
    char err[256] = "";
    if (bn_dataset_scan_dir(nd->opt.data_dir, false, 1000, s_eval_chunk, &a, err, sizeof err) != BN_OK
        || a.n == 0) {
        BN_WARN("final evaluation: %s", err);
        return;
    }
    r->accuracy = a.correct / a.n;
    r->test_loss = a.loss / a.n;
    r->eval_images = a.n;
    r->cpu_eval = a.cpu;
}

static void s_evaluate(bn_node_t *nd, bool last)
{
    bn_report_t *r = &nd->rep;
    r->accuracy = NAN;
    r->test_loss = NAN;
    if (nd->byz_id || !nd->test.n || !(last || (nd->epoch + 1) % nd->opt.eval_every == 0))
        return;
    double t0 = bn_now(), c0 = bn_cpu_now();
    if (last && nd->eval_partial) {
        s_evaluate_all(nd, r);
    } else {
        bn_model_evaluate(nd->model, nd->x, &nd->test, NULL, nd->test.n, &r->accuracy, &r->test_loss);
        r->eval_images = nd->test.n;
        r->cpu_eval = bn_cpu_now() - c0;
    }
    r->t_eval = bn_now() - t0;
}

/* Counters of the epoch: deltas of the cumulative transport / inbox stats. */
static void s_counters(bn_node_t *nd)
{
    bn_report_t *r = &nd->rep;
    const bn_transport_stats_t *ts = bn_transport_stats(nd->tr), *t0 = &nd->tr_at_epoch;
    r->bytes_sent = ts->bytes_sent - t0->bytes_sent;
    r->bytes_received = ts->bytes_received - t0->bytes_received;
    r->msgs_sent = ts->msgs_sent - t0->msgs_sent;
    r->msgs_received = ts->msgs_received - t0->msgs_received;
    r->send_dropped = ts->send_dropped - t0->send_dropped;
    r->fault_dropped = ts->fault_dropped - t0->fault_dropped;
    r->fault_delayed = ts->fault_delayed - t0->fault_delayed;
    r->shm_sent = nd->shm_sent - nd->shm_at_epoch.sent;
    r->shm_received = nd->shm ? bn_shm_stats(nd->shm)->received - nd->shm_at_epoch.received : 0;
    const bn_inbox_stats_t *is = bn_inbox_stats(nd->inbox), *i0 = &nd->in_at_epoch;
    for (int k = 0; k < BN_DROP_COUNT; k++)
        r->drops[k] = is->drops[k] - i0->drops[k];
    r->peers_given_up = is->peers_given_up - i0->peers_given_up;
    r->peers_restored = is->peers_restored - i0->peers_restored;
    bn_proc_usage_t u;
    bn_proc_usage(&u);
    r->max_rss_kb = u.max_rss_kb;
    r->cpu_process = BN_MAX(u.cpu - nd->use_at_epoch.cpu, 0.0);
    r->ctx_voluntary = u.nvcsw - BN_MIN(u.nvcsw, nd->use_at_epoch.nvcsw);
    r->ctx_involuntary = u.nivcsw - BN_MIN(u.nivcsw, nd->use_at_epoch.nivcsw);
    r->rule_nonfinite = nd->rule ? bn_rule_stats(nd->rule)->nonfinite : 0;
}

static void s_fill(bn_node_t *nd, bool last)
{
    bn_report_t *r = &nd->rep;
    r->node = nd->id;
    r->epoch = nd->epoch;
    r->n_nodes = nd->n;
    r->honest = !nd->byz_id;
    r->final = last;
    snprintf(r->attack, sizeof r->attack, "%s", bn_attack_name(nd->opt.attack.kind));
    r->train_loss = nd->train_steps ? nd->train_loss_sum / nd->train_steps : NAN;
    s_evaluate(nd, last);
    s_counters(nd);
    r->topology_fp = nd->g ? nd->g->fingerprint : 0;
    r->config_fp = nd->config_fp;
    r->degree = nd->deg;
    r->rounds = nd->R;
    r->t_epoch = bn_now() - r->t_epoch;
    for (uint32_t j = 0; j < nd->n; j++)
        r->weight[j] = nd->weight_acc[j] / (float) nd->R;
}

static int s_write_jsonl(bn_node_t *nd)
{
    if (!nd->jsonl)
        return BN_OK;
    bn_report_to_json(&nd->rep, nd->jsonl);
    if (fputc('\n', nd->jsonl) == EOF || fflush(nd->jsonl) != 0 || ferror(nd->jsonl)) {
        BN_ERROR("cannot write %s: %s", nd->jsonl_path, strerror(errno ? errno : EIO));
        return BN_EIO;
    }
    return BN_OK;
}

static void s_send_report(bn_node_t *nd)
{
    if (!nd->swarm.monitor.endpoint[0])
        return;
    bn_wire_header_t h;
    bn_node_header(nd, &h, BN_MSG_REPORT, nd->id);
    h.round = (uint64_t) nd->epoch * nd->R + nd->R - 1;   /* the epoch's last round: e = r / R */
    msgpack_sbuffer sb;
    bn_report_encode(&nd->rep, &sb);
    bn_buf_t *payload = NULL;
    if (!nd->byz_id) {
        void *bytes;
        payload = bn_buf_new(nd->dim * sizeof(float), &bytes);
        if (payload)
            bn_wire_payload_encode(nd->x, nd->dim, bytes);
    }
    h.dim = payload ? (uint32_t) nd->dim : 0;
    uint8_t hb[BN_WIRE_HEADER_MAX];
    size_t hlen = 0;
    bn_wire_encode(&h, hb, sizeof hb, &hlen);
    if (bn_transport_send(nd->tr, BN_PEER_MONITOR, hb, hlen, sb.data, sb.size, payload) != BN_OK)
        BN_WARN("epoch %u: the report to the monitor was dropped", nd->epoch + 1);
    bn_buf_release(&payload);
    msgpack_sbuffer_destroy(&sb);
}

int bn_node_report_end(bn_node_t *nd)
{
    bool last = nd->epoch + 1 == nd->opt.epochs;
    s_fill(nd, last);
    int rc = s_write_jsonl(nd);
    s_send_report(nd);
    bn_report_t *r = &nd->rep;
    if (!nd->byz_id && !isnan(r->accuracy))
        BN_INFO("epoch %u: accuracy %.4f, train loss %.4f, %.1f s (compute %.1f, wait %.1f, aggregate %.2f)",
                nd->epoch + 1, r->accuracy, r->train_loss, r->t_epoch, r->t_compute, r->t_wait,
                r->t_aggregate);
    return rc;
}
