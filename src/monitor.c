/*  monitor.c -- metrics collector; see monitor.h.
 *
 *  State: for each epoch a row of n report slots (JSON text, accuracy, role,
 *  the model of honest nodes while the epoch is open).  At most a few epochs
 *  are open at once; a closed epoch keeps only its summary and the JSON lines.
 */
#include "monitor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "metrics.h"
#include "json.h"
#include "roles.h"
#include "options.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"

typedef struct {
    bool     have;
    bool     honest;
    double   accuracy;
    double   byz_share;     /* share of this node's weight given to Byzantine nodes, NAN if n/a */
    double   sec_per_round;
    double   t_compute, t_wait, t_aggregate, t_encode;
    uint64_t max_rss_kb;
    char    *json;          /* the report as JSON, owned */
    float   *x;             /* honest model while the epoch is open, owned */
} s_cell_t;

typedef struct {
    bool     closed;
    uint32_t reports;
    double   first_seen;
    double   mean_acc, min_acc, max_acc, consensus, byz_share, sec_per_round;
    double   t_compute, t_wait, t_aggregate, t_encode;
    uint32_t honest_reported;
    uint64_t max_rss_kb;    /* largest peak RSS of any node that reported */
} s_epoch_t;

typedef struct {
    bn_swarm_t   swarm;
    bn_options_t opt;
    uint32_t     n, E;
    bool        *is_byz;
    bool        *role_seen;     /* role known from a report */
    bool        *role_honest;
    s_cell_t    *cells;         /* E * n */
    s_epoch_t   *epochs;        /* E */
    uint32_t     last_accepted_epoch;
    bool        *failed;
    char         out[BN_PATH_MAX];
    double      *mean_scratch;
    size_t       dim;
    uint64_t     dropped;
    bool         quiet;
} s_mon_t;

static s_cell_t *s_cell(s_mon_t *m, uint32_t e, uint32_t i)
{
    return &m->cells[(size_t) e * m->n + i];
}

static bool s_is_honest(const s_mon_t *m, uint32_t i)
{
    return m->role_seen[i] ? m->role_honest[i] : !m->is_byz[i];
}

static void s_write_summary(s_mon_t *m)
{
    char path[BN_PATH_MAX + 32], tmp[BN_PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/summary.json", m->out);
    snprintf(tmp, sizeof tmp, "%s/summary.json.tmp", m->out);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        BN_ERROR("%s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "{\"config\": ");
    bn_options_to_json(&m->opt, f);
    fseek(f, -1, SEEK_CUR);   /* reopen the config object to add the swarm's facts */
    fprintf(f, ", \"nodes\": %u, \"swarm\": ", m->n);
    bn_json_string(f, m->swarm.name);
    fprintf(f, "},\n \"epochs\": [");
    bool first = true;
    uint32_t last_closed = UINT32_MAX;
    for (uint32_t e = 0; e < m->E; e++) {
        s_epoch_t *ep = &m->epochs[e];
        if (!ep->closed)
            continue;
        last_closed = e;
        fprintf(f, "%s\n  {\"epoch\": %u, \"mean_accuracy\": ", first ? "" : ",", e + 1);
        first = false;
        if (isfinite(ep->mean_acc))
            fprintf(f, "%.6f, \"min_accuracy\": %.6f, \"max_accuracy\": %.6f", ep->mean_acc,
                    ep->min_acc, ep->max_acc);
        else
            fprintf(f, "null, \"min_accuracy\": null, \"max_accuracy\": null");
        fprintf(f, ", \"consensus_error\": %.6g, \"byzantine_weight\": ", ep->consensus);
        if (isfinite(ep->byz_share))
            fprintf(f, "%.6g", ep->byz_share);
        else
            fprintf(f, "null");
        fprintf(f, ", \"honest_reported\": %u, \"max_node_rss_mb\": %.1f", ep->honest_reported,
                ep->max_rss_kb / 1024.0);
        fprintf(f, ", \"seconds_per_round\": %.4f, \"round_split\": "
                   "{\"compute\": %.4f, \"wait\": %.4f, \"aggregate\": %.4f, \"encode\": %.4f}}",
                ep->sec_per_round, ep->t_compute, ep->t_wait,
                ep->t_aggregate, ep->t_encode);
    }
    fprintf(f, "\n ],\n \"nodes\": [");
    for (uint32_t i = 0; i < m->n; i++) {
        const char *attack = "none";
        double acc = NAN;
        uint32_t last_e = UINT32_MAX;
        for (uint32_t e = 0; e < m->E; e++) {
            s_cell_t *c = s_cell(m, e, i);
            if (c->have) {
                last_e = e;
                if (isfinite(c->accuracy))
                    acc = c->accuracy;
            }
        }
        (void) attack;
        bool honest = s_is_honest(m, i);
        fprintf(f, "%s\n  {\"id\": %u, \"role\": \"%s\", \"attack\": ", i ? "," : "", i,
                honest ? "honest" : "byzantine");
        /* The attack name is in the node's own reports; repeat it here. */
        const char *json0 = last_e != UINT32_MAX ? s_cell(m, last_e, i)->json : NULL;
        const char *a = json0 ? strstr(json0, "\"attack\": \"") : NULL;
        if (a) {
            a += 11;
            const char *end = strchr(a, '"');
            fprintf(f, "\"%.*s\"", (int) (end ? end - a : 0), a);
        } else {
            fprintf(f, "\"%s\"", honest ? "none" : "unknown");
        }
        fprintf(f, ", \"accuracy\": ");
        if (isfinite(acc))
            fprintf(f, "%.6f", acc);
        else
            fprintf(f, "null");
        bool failed = last_closed != UINT32_MAX && (last_e == UINT32_MAX || last_e < last_closed);
        fprintf(f, ", \"failed\": %s, \"last_epoch\": %d, \"epochs\": [", failed ? "true" : "false",
                last_e == UINT32_MAX ? 0 : (int) last_e + 1);
        bool f1 = true;
        for (uint32_t e = 0; e < m->E; e++) {
            s_cell_t *c = s_cell(m, e, i);
            if (c->have && c->json) {
                fprintf(f, "%s%s", f1 ? "" : ", ", c->json);
                f1 = false;
            }
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n ],\n \"dropped_reports\": %llu}\n", (unsigned long long) m->dropped);
    fclose(f);
    rename(tmp, path);

    snprintf(path, sizeof path, "%s/epochs.csv", m->out);
    f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "epoch,mean_accuracy,min_accuracy,max_accuracy,consensus_error,byzantine_weight,seconds_per_round\n");
    for (uint32_t e = 0; e < m->E; e++) {
        s_epoch_t *ep = &m->epochs[e];
        if (ep->closed)
            fprintf(f, "%u,%.6f,%.6f,%.6f,%.6g,%.6g,%.4f\n", e + 1, ep->mean_acc, ep->min_acc,
                    ep->max_acc, ep->consensus, ep->byz_share, ep->sec_per_round);
    }
    fclose(f);
}

static void s_close_epoch(s_mon_t *m, uint32_t e)
{
    s_epoch_t *ep = &m->epochs[e];
    if (ep->closed)
        return;
    ep->closed = true;
    const float **xs = calloc(m->n, sizeof *xs);
    uint32_t k = 0, acc_n = 0, share_n = 0, time_n = 0;
    double acc_sum = 0, share_sum = 0, spr = 0;
    ep->min_acc = INFINITY;
    ep->max_acc = -INFINITY;
    for (uint32_t i = 0; i < m->n; i++) {
        s_cell_t *c = s_cell(m, e, i);
        if (c->have && c->max_rss_kb > ep->max_rss_kb)
            ep->max_rss_kb = c->max_rss_kb;
        if (!c->have || !s_is_honest(m, i))
            continue;
        ep->honest_reported++;
        if (c->x && xs)
            xs[k++] = c->x;
        if (isfinite(c->accuracy)) {
            acc_sum += c->accuracy;
            acc_n++;
            ep->min_acc = fmin(ep->min_acc, c->accuracy);
            ep->max_acc = fmax(ep->max_acc, c->accuracy);
        }
        if (isfinite(c->byz_share)) {
            share_sum += c->byz_share;
            share_n++;
        }
        spr += c->sec_per_round;
        ep->t_compute += c->t_compute;
        ep->t_wait += c->t_wait;
        ep->t_aggregate += c->t_aggregate;
        ep->t_encode += c->t_encode;
        time_n++;
    }
    ep->mean_acc = acc_n ? acc_sum / acc_n : NAN;
    if (!acc_n)
        ep->min_acc = ep->max_acc = NAN;
    ep->byz_share = share_n ? share_sum / share_n : NAN;
    ep->consensus = (k && m->mean_scratch) ? bn_consensus_error(xs, k, m->dim, m->mean_scratch) : 0.0;
    if (time_n) {
        ep->sec_per_round = spr / time_n;
        ep->t_compute /= time_n;
        ep->t_wait /= time_n;
        ep->t_aggregate /= time_n;
        ep->t_encode /= time_n;
    }
    free(xs);
    for (uint32_t i = 0; i < m->n; i++) {
        s_cell_t *c = s_cell(m, e, i);
        bn_free(c->x);
        c->x = NULL;
    }
    if (!m->quiet) {
        printf("epoch %3u/%u  accuracy mean %.4f min %.4f max %.4f  consensus %.3g  byz-weight %.3g  "
               "%.3f s/round (compute %.3f wait %.3f aggregate %.4f encode %.4f)  honest %u\n",
               e + 1, m->E, ep->mean_acc, ep->min_acc, ep->max_acc, ep->consensus, ep->byz_share,
               ep->sec_per_round, ep->t_compute, ep->t_wait, ep->t_aggregate, ep->t_encode,
               ep->honest_reported);
        fflush(stdout);
    }
    s_write_summary(m);
}

/* A diverged honest model (NaN) must not poison eq. (3) for the others. */
static bool s_finite_payload(const void *data, size_t len)
{
    if (((uintptr_t) data & 3u) == 0)
        return bn_all_finite(data, len / 4);
    float v;
    for (size_t i = 0; i < len; i += 4) {
        memcpy(&v, (const char *) data + i, 4);
        if (!isfinite(v))
            return false;
    }
    return true;
}

static void s_accept(s_mon_t *m, bn_rx_t *rx)
{
    bn_wire_header_t h;
    bn_report_t r;
    if (rx->n != 3 || rx->truncated
        || bn_wire_decode(zmq_msg_data(&rx->frames[0]), zmq_msg_size(&rx->frames[0]), &h) != BN_DROP_NONE
        || h.kind != BN_MSG_REPORT || h.swarm_id != m->swarm.swarm_id || h.sender >= m->n
        || h.epoch >= m->E
        || (rx->auth_id != BN_AUTH_NONE && rx->auth_id != h.sender)) {
        m->dropped++;
        return;
    }
    if (bn_report_unpack(zmq_msg_data(&rx->frames[1]), zmq_msg_size(&rx->frames[1]), &r) != BN_OK
        || r.node != h.sender || r.epoch != h.epoch) {
        m->dropped++;
        return;
    }
    size_t plen = zmq_msg_size(&rx->frames[2]);
    if (plen && (plen % 4 || (m->dim && plen != m->dim * 4) || plen != (size_t) h.dim * 4)) {
        free(r.weight);
        m->dropped++;
        return;
    }
    if (plen && !m->dim) {
        m->dim = plen / 4;
        m->mean_scratch = malloc(m->dim * sizeof(double));
    }
    s_cell_t *c = s_cell(m, h.epoch, h.sender);
    s_epoch_t *ep = &m->epochs[h.epoch];
    if (c->have || ep->closed) {
        free(r.weight);
        m->dropped++;
        return;
    }
    c->have = true;
    c->honest = r.honest;
    m->role_seen[h.sender] = true;
    m->role_honest[h.sender] = r.honest;
    c->accuracy = r.accuracy;
    c->sec_per_round = r.rounds ? r.t_epoch / r.rounds : 0;
    c->t_compute = r.rounds ? r.t_compute / r.rounds : 0;
    c->t_wait = r.rounds ? r.t_wait / r.rounds : 0;
    c->t_aggregate = r.rounds ? r.t_aggregate / r.rounds : 0;
    c->t_encode = r.rounds ? r.t_encode / r.rounds : 0;
    c->max_rss_kb = r.max_rss_kb;
    c->byz_share = NAN;
    if (r.honest && r.weight && r.n_nodes == m->n) {
        double tot = 0, byz = 0;
        for (uint32_t j = 0; j < m->n; j++) {
            if (!isfinite(r.weight[j]))
                continue;
            tot += r.weight[j];
            if (m->is_byz[j])
                byz += r.weight[j];
        }
        if (tot > 0)
            c->byz_share = byz / tot;
    }
    if (plen && r.honest && !s_finite_payload(zmq_msg_data(&rx->frames[2]), plen)) {
        BN_WARN("node %u's model of epoch %u is not finite: left out of the consensus error",
                h.sender, h.epoch + 1);
    } else if (plen && r.honest) {
        c->x = bn_alloc_floats(m->dim);
        if (c->x)
            memcpy(c->x, zmq_msg_data(&rx->frames[2]), plen);
    }
    char *buf = NULL;
    size_t blen = 0;
    FILE *mf = open_memstream(&buf, &blen);
    if (mf) {
        bn_report_to_json(&r, mf);
        fclose(mf);
        c->json = buf;
    }
    free(r.weight);
    if (ep->reports++ == 0)
        ep->first_seen = bn_now();
    if (h.epoch + 1 > m->last_accepted_epoch)
        m->last_accepted_epoch = h.epoch + 1;
    if (ep->reports == m->n)
        s_close_epoch(m, h.epoch);
}

int bn_monitor_run(const bn_monitor_opts_t *opts, volatile sig_atomic_t *stop)
{
    s_mon_t m;
    memset(&m, 0, sizeof m);
    m.quiet = opts->quiet;
    char err[512] = "";
    int rc = bn_swarm_load(&m.swarm, opts->swarm_path, err, sizeof err);
    bn_transport_t *tr = NULL;
    if (rc != BN_OK)
        goto fail;
    if (!m.swarm.monitor.endpoint[0]) {
        rc = bn_fail(err, sizeof err, BN_EARG, "%s has no 'monitor' line", opts->swarm_path);
        goto fail;
    }
    m.n = m.swarm.n;
    bn_options_default(&m.opt);
    for (uint32_t i = 0; i < m.swarm.n_options; i++) {
        rc = bn_options_set(&m.opt, m.swarm.option_names[i], m.swarm.option_values[i], err, sizeof err);
        if (rc != BN_OK)
            goto fail;
    }
    bn_options_finish(&m.opt, m.n, err, sizeof err);
    m.E = m.opt.epochs;
    snprintf(m.out, sizeof m.out, "%s", opts->out_dir);
    mkdir(m.out, 0755);
    m.is_byz = calloc(m.n, sizeof *m.is_byz);
    m.role_seen = calloc(m.n, sizeof *m.role_seen);
    m.role_honest = calloc(m.n, sizeof *m.role_honest);
    m.cells = calloc((size_t) m.E * m.n, sizeof *m.cells);
    m.epochs = calloc(m.E, sizeof *m.epochs);
    if (!m.is_byz || !m.role_seen || !m.role_honest || !m.cells || !m.epochs) {
        rc = BN_ENOMEM;
        goto fail;
    }
    bn_roles_byzantine(m.opt.seed, m.n, m.opt.byzantine, m.is_byz);

    char key[BN_KEY_Z85_LEN + 1];
    bn_transport_opts_t to;
    bn_transport_opts_default(&to);
    to.rcvhwm = 1000;
    if (opts->key_path) {
        rc = bn_key_read(opts->key_path, key, err, sizeof err);
        if (rc != BN_OK)
            goto fail;
        to.secret_key = key;
    }
    tr = bn_transport_new(&m.swarm, UINT32_MAX, m.swarm.monitor.endpoint, &to, err, sizeof err);
    if (!tr) {
        rc = BN_ENET;
        goto fail;
    }
    double grace = opts->grace > 0 ? opts->grace : 20.0;
    for (;;) {
        uint32_t open_e = 0;
        while (open_e < m.E && m.epochs[open_e].closed)
            open_e++;
        if (open_e == m.E)
            break;
        if (stop && *stop)
            break;
        bn_rx_t rx;
        int r = bn_transport_recv(tr, 200, &rx);
        if (r == BN_OK) {
            s_accept(&m, &rx);
            bn_rx_close(&rx);
        }
        /* Close epochs the swarm has left behind for longer than the grace. */
        double now = bn_now();
        for (uint32_t e = 0; e + 1 < m.E; e++)
            if (!m.epochs[e].closed && m.epochs[e + 1].reports
                && now - m.epochs[e + 1].first_seen > grace)
                s_close_epoch(&m, e);
    }
    for (uint32_t e = 0; e < m.E; e++)
        if (!m.epochs[e].closed && m.epochs[e].reports)
            s_close_epoch(&m, e);
    s_write_summary(&m);
    rc = BN_OK;
    goto done;
fail:
    BN_ERROR("%s", err[0] ? err : bn_strerror(rc));
done:
    bn_transport_destroy(&tr);
    if (m.cells)
        for (size_t i = 0; i < (size_t) m.E * m.n; i++) {
            free(m.cells[i].json);
            bn_free(m.cells[i].x);
        }
    free(m.cells);
    free(m.epochs);
    free(m.is_byz);
    free(m.role_seen);
    free(m.role_honest);
    free(m.mean_scratch);
    bn_swarm_free(&m.swarm);
    return rc;
}
