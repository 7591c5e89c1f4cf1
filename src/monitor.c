/*  monitor.c -- metrics collector; see monitor.h.
 *
 *  State: for each (epoch, node) a cell holding the accepted report's JSON
 *  and the figures the epoch needs (and, while the epoch is open, the honest
 *  model); for each epoch its figures once closed.  Everything the monitor
 *  expects (n, roles, model size, R, deadlines, configuration fingerprint)
 *  comes from the swarm file, never from a report.
 *
 *  Sections: set-up, the journal, validation of one REPORT, epochs
 *  (deadlines, closing, figures), output (summary.json, epochs.csv), run.
 */
#include "monitor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "metrics.h"
#include "model.h"
#include "options.h"
#include "outfile.h"
#include "roles.h"
#include "swarmfile.h"
#include "transport.h"
#include "wire.h"

#define S_JOURNAL_VERSION 1
#define S_JOURNAL_MAX     (1u << 30)   /* a longer journal is not ours */

enum { S_REC_REPORT = 1, S_REC_CLOSE = 2, S_REC_DROPS = 3 };
enum { S_MODEL_NONE = 0, S_MODEL_FINITE = 1, S_MODEL_NONFINITE = 2 };

typedef struct {
    bool     have;
    double   t_recv;        /* bn_now() at acceptance (journal replay: the monitor's start) */
    double   accuracy;
    double   byz_share;     /* share of this node's weight given to Byzantine nodes, NAN if n/a */
    double   sec_per_round, t_compute, t_wait, t_aggregate, t_encode;
    uint64_t max_rss_kb;
    bool     live;          /* received by this monitor (not replayed): t_recv is its arrival */
    double   t_epoch, cpu_phase[4], cpu_process;   /* seconds, as reported */
    int      model;         /* S_MODEL_* */
    char     attack[BN_REPORT_ATTACK_MAX];
    char    *json;          /* the report as JSON, owned */
    float   *x;             /* honest finite model while the epoch is open, owned */
} s_cell_t;

struct bn_monitor_t {
    bn_swarm_t   swarm;
    bn_options_t opt;
    uint32_t     n, E, R, cores;
    size_t       dim;               /* the swarm's model size, floats */
    uint64_t     config_fp;
    char        *config_json;       /* summary.json's "config" object, built once */
    bool        *is_byz;            /* n, from (seed, byzantine) */
    s_cell_t    *cells;             /* E * n */
    bn_monitor_epoch_t *epochs;     /* E */
    double       start, budget, first_extra;
    double       pace;              /* slowest honest epoch seen live, s (s_note_pace) */
    uint64_t     drops[BN_MDROP_COUNT];
    uint64_t     models_nonfinite;
    bool        *warned;            /* (n + 1) * BN_MDROP_COUNT: logged once per sender, reason */
    char         out[BN_PATH_MAX];
    FILE        *journal;
    double      *mean_scratch;      /* dim */
    bool         replaying, quiet;
    int          io_rc;             /* first write failure, BN_OK if none */
    char         io_err[512];
};

static const char *s_drop_names[BN_MDROP_COUNT] = {
    "none", "frames", "size", "header", "version", "kind", "swarm", "sender", "auth", "epoch",
    "dtype", "metrics", "mismatch", "config", "role", "range", "weight", "empty", "dim",
    "duplicate", "late",
};

const char *bn_monitor_drop_name(bn_monitor_drop_t why)
{
    return (unsigned) why < BN_MDROP_COUNT ? s_drop_names[why] : "?";
}

static s_cell_t *s_cell(const bn_monitor_t *m, uint32_t e, uint32_t i)
{
    return &m->cells[(size_t) e * m->n + i];
}

static void s_io_fail(bn_monitor_t *m, const char *msg)
{
    if (m->io_rc == BN_OK) {
        m->io_rc = BN_EIO;
        size_t len = BN_MIN(strlen(msg), sizeof m->io_err - 1);
        memcpy(m->io_err, msg, len);
        m->io_err[len] = 0;
    }
}

/* ---- set-up ------------------------------------------------------------ */

/* The run options every node applies: defaults, then the swarm file. */
static int s_load_options(bn_monitor_t *m, const char *path, char *err, size_t errlen)
{
    int rc = bn_swarm_load(&m->swarm, path, err, errlen);
    if (rc != BN_OK)
        return rc;
    if (!m->swarm.monitor.endpoint[0])
        return bn_fail(err, errlen, BN_EARG, "%s has no 'monitor' line", path);
    m->n = m->swarm.n;
    bn_options_default(&m->opt);
    for (uint32_t i = 0; i < m->swarm.n_options; i++) {
        rc = bn_options_set(&m->opt, m->swarm.option_names[i], m->swarm.option_values[i], err,
                            errlen);
        if (rc != BN_OK)
            return rc;
    }
    rc = bn_options_finish(&m->opt, m->n, err, errlen);
    if (rc != BN_OK)
        return rc;
    bn_model_t *model = bn_model_new(m->opt.model, 1);
    if (!model)
        return bn_fail(err, errlen, BN_ENOMEM, "cannot build the swarm's model");
    m->dim = bn_model_dim(model);
    bn_model_destroy(&model);
    m->E = m->opt.epochs;
    m->R = bn_schedule_rounds_per_epoch(m->opt.train_size, m->n, m->opt.batch,
                                        m->opt.local_steps);
    m->config_fp = bn_options_fingerprint(&m->opt);
    return BN_OK;
}

static int s_journal_open(bn_monitor_t *m, char *err, size_t errlen);
static char *s_config_json(const bn_monitor_t *m);

/* The out directory, then the journal (replayed if it is this run's). */
static int s_begin(bn_monitor_t *m, char *err, size_t errlen)
{
    if (mkdir(m->out, 0755) != 0 && errno != EEXIST)
        return bn_fail(err, errlen, BN_EIO, "%s: %s", m->out, strerror(errno));
    return s_journal_open(m, err, errlen);
}

bn_monitor_t *bn_monitor_new(const bn_monitor_opts_t *opts, double now, char *err, size_t errlen)
{
    bn_monitor_t *m = calloc(1, sizeof *m);
    if (!m) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        return NULL;
    }
    m->quiet = opts->quiet;
    m->start = now;
    if (s_load_options(m, opts->swarm_path, err, errlen) != BN_OK)
        goto fail;
    if (strlen(opts->out_dir) >= sizeof m->out) {
        bn_fail(err, errlen, BN_EARG, "--out: path too long");
        goto fail;
    }
    snprintf(m->out, sizeof m->out, "%s", opts->out_dir);
    double T = m->opt.round_timeout_ms / 1000.0;
    double grace = opts->grace > 0 ? opts->grace : 20.0;
    m->budget = m->R * T + grace;
    m->first_extra = 2 * T;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    m->cores = opts->cores ? opts->cores : (uint32_t) (online > 0 ? online : 1);
    m->is_byz = calloc(m->n, sizeof *m->is_byz);
    m->cells = calloc((size_t) m->E * m->n, sizeof *m->cells);
    m->epochs = calloc(m->E, sizeof *m->epochs);
    m->warned = calloc((size_t) (m->n + 1) * BN_MDROP_COUNT, sizeof *m->warned);
    m->mean_scratch = malloc((m->dim ? m->dim : 1) * sizeof(double));
    m->config_json = s_config_json(m);
    if (!m->is_byz || !m->cells || !m->epochs || !m->warned || !m->mean_scratch || !m->config_json
        || bn_roles_byzantine(m->opt.seed, m->n, m->opt.byzantine, m->is_byz) != BN_OK) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        goto fail;
    }
    if (s_begin(m, err, errlen) != BN_OK)
        goto fail;
    return m;
fail:
    bn_monitor_destroy(&m);
    return NULL;
}

/* Frees what the reports brought (their JSON, the open models). */
static void s_free_cells(bn_monitor_t *m)
{
    for (size_t i = 0; m->cells && i < (size_t) m->E * m->n; i++) {
        free(m->cells[i].json);
        bn_free(m->cells[i].x);
    }
}

void bn_monitor_clear(bn_monitor_t *m)
{
    s_free_cells(m);
    memset(m->cells, 0, (size_t) m->E * m->n * sizeof *m->cells);
    memset(m->epochs, 0, m->E * sizeof *m->epochs);
    memset(m->warned, 0, (size_t) (m->n + 1) * BN_MDROP_COUNT * sizeof *m->warned);
    memset(m->drops, 0, sizeof m->drops);
    m->models_nonfinite = 0;
    if (m->journal)
        fclose(m->journal);
    m->journal = NULL;
    m->replaying = false;
    m->io_rc = BN_OK;
    m->io_err[0] = 0;
}

int bn_monitor_reset(bn_monitor_t *m, double now, char *err, size_t errlen)
{
    bn_monitor_clear(m);
    m->start = now;
    return s_begin(m, err, errlen);
}

void bn_monitor_destroy(bn_monitor_t **self_p)
{
    bn_monitor_t *m = self_p ? *self_p : NULL;
    if (!m)
        return;
    s_free_cells(m);
    if (m->journal)
        fclose(m->journal);
    free(m->cells);
    free(m->epochs);
    free(m->is_byz);
    free(m->warned);
    free(m->mean_scratch);
    free(m->config_json);
    bn_swarm_free(&m->swarm);
    free(m);
    *self_p = NULL;
}

/* ---- the journal --------------------------------------------------------
 *
 * DIR/monitor.journal is a sequence of MessagePack objects: a map naming the
 * run (journal version, swarm id, configuration fingerprint, n, E, dim),
 * then [1, node, epoch, metrics frame (bin), model state] per accepted
 * report, [2, epoch, consensus error, models] per closed epoch, and
 * [3, [drop counters]] before each close and at the end.  A record
 * cut short by a crash ends the replay; the file is truncated there. */

static void s_journal_append(bn_monitor_t *m, const msgpack_sbuffer *sb)
{
    if (m->replaying || !m->journal || m->io_rc != BN_OK)
        return;
    char path[BN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/monitor.journal", m->out);
    if (fwrite(sb->data, 1, sb->size, m->journal) != sb->size || fflush(m->journal) != 0) {
        char msg[BN_PATH_MAX + 96];
        snprintf(msg, sizeof msg, "%s: write failed: %s", path, strerror(errno));
        s_io_fail(m, msg);
    }
}

/* One journal record, packed into sb through pk (s_jrec_init), then written
 * and freed by s_jrec_append. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;           /* writes into sb                                */
} s_jrec_t;

static void s_jrec_init(s_jrec_t *r)
{
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}

/* A record [tag, ...] of n items in all: the tag is packed, the caller packs
 * the other n - 1 through the packer returned. */
static msgpack_packer *s_jrec_begin(s_jrec_t *r, uint32_t n, uint32_t tag)
{
    s_jrec_init(r);
    msgpack_pack_array(&r->pk, n);
    msgpack_pack_uint32(&r->pk, tag);
    return &r->pk;
}

static void s_jrec_append(bn_monitor_t *m, s_jrec_t *r)
{
    s_journal_append(m, &r->sb);
    msgpack_sbuffer_destroy(&r->sb);
}

static void s_journal_head(const bn_monitor_t *m, msgpack_packer *pk)
{
    static const char *keys[6] = { "journal", "swarm", "config", "n", "epochs", "dim" };
    uint64_t vals[6] = { S_JOURNAL_VERSION, m->swarm.swarm_id, m->config_fp, m->n, m->E, m->dim };
    msgpack_pack_map(pk, 6);
    for (int i = 0; i < 6; i++) {
        msgpack_pack_str(pk, strlen(keys[i]));
        msgpack_pack_str_body(pk, keys[i], strlen(keys[i]));
        msgpack_pack_uint64(pk, vals[i]);
    }
}

static bool s_replay_record(bn_monitor_t *m, const msgpack_object *o);

/* Replays buf[0..len); returns the length of the good prefix (0 if the
 * head is not this run's). */
static size_t s_journal_replay(bn_monitor_t *m, const char *buf, size_t len)
{
    s_jrec_t head;
    s_jrec_init(&head);
    s_journal_head(m, &head.pk);
    size_t good = 0;
    if (len >= head.sb.size && !memcmp(buf, head.sb.data, head.sb.size)) {
        good = head.sb.size;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = good;
        m->replaying = true;
        for (size_t span; (span = bn_msgpack_span(buf + off, len - off)) > 0; good = off)
            if (msgpack_unpack_next(&up, buf, off + span, &off) != MSGPACK_UNPACK_SUCCESS
                || !s_replay_record(m, &up.data))
                break;
        m->replaying = false;
        msgpack_unpacked_destroy(&up);
    }
    msgpack_sbuffer_destroy(&head.sb);
    return good;
}

static char *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz > 0 && (unsigned long) sz <= S_JOURNAL_MAX && fseek(f, 0, SEEK_SET) == 0
            && (buf = malloc((size_t) sz)) && fread(buf, 1, (size_t) sz, f) == (size_t) sz) {
            *len = (size_t) sz;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int s_journal_open(bn_monitor_t *m, char *err, size_t errlen)
{
    char path[BN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/monitor.journal", m->out);
    size_t len = 0, good = 0;
    char *buf = s_read_file(path, &len);
    if (buf) {
        good = s_journal_replay(m, buf, len);
        free(buf);
        if (good == 0)
            BN_WARN("%s belongs to another run: starting a new one", path);
        else
            BN_INFO("resumed from %s (%zu of %zu bytes replayed)", path, good, len);
    }
    m->journal = fopen(path, good ? "r+b" : "wb");
    if (!m->journal || (good && (fseek(m->journal, (long) good, SEEK_SET) != 0
                                 || ftruncate(fileno(m->journal), (off_t) good) != 0)))
        return bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    if (!good) {
        s_jrec_t rec;
        s_jrec_init(&rec);
        s_journal_head(m, &rec.pk);
        s_jrec_append(m, &rec);
    }
    return m->io_rc == BN_OK ? BN_OK : bn_fail(err, errlen, m->io_rc, "%s", m->io_err);
}

/* ---- validation of one REPORT ----------------------------------------- */

/* The checks a decoded report's metrics must pass (also on replay). */
static bn_monitor_drop_t s_check_metrics(const bn_monitor_t *m, const bn_report_t *r)
{
    if (r->config_fp != m->config_fp)
        return BN_MDROP_CONFIG;
    bool honest = !m->is_byz[r->node];
    if (r->honest != honest)
        return BN_MDROP_ROLE;
    if (r->n_nodes != m->n || r->degree >= m->n || r->final != (r->epoch + 1 == m->E)
        || r->rounds > m->R || r->rounds_timed_out > m->R || r->rounds_skipped > m->R
        || r->peers_given_up > (uint64_t) m->n * m->R || r->peers_restored > (uint64_t) m->n * m->R
        || (!isnan(r->accuracy) && (r->accuracy < 0 || r->accuracy > 1))
        || r->test_loss < 0 || r->train_loss < 0 || r->t_compute < 0 || r->t_wait < 0
        || r->t_aggregate < 0 || r->t_encode < 0 || r->t_eval < 0 || r->t_epoch < 0
        || r->cpu_compute < 0 || r->cpu_aggregate < 0 || r->cpu_encode < 0 || r->cpu_eval < 0
        || r->cpu_process < 0)
        return BN_MDROP_RANGE;
    if (honest) {
        if (!r->weight)
            return BN_MDROP_WEIGHT;
        for (uint32_t j = 0; j < m->n; j++)
            if (!(r->weight[j] >= 0.0f && r->weight[j] <= 1.0f + 1e-4f))
                return BN_MDROP_WEIGHT;
    }
    return BN_MDROP_NONE;
}

/* The checks of the frames and header, before the metrics are decoded. */
static bn_monitor_drop_t s_check_frames(const bn_monitor_t *m, const bn_monitor_frame_t *fr,
                                        int n_frames, uint32_t auth_id, bn_wire_header_t *h)
{
    if (n_frames != 3)
        return BN_MDROP_FRAMES;
    if (fr[1].size > BN_REPORT_MAX_BYTES || fr[2].size > m->dim * sizeof(float))
        return BN_MDROP_SIZE;
    bn_drop_reason_t why = bn_wire_decode(fr[0].data, fr[0].size, h);
    if (why != BN_DROP_NONE)
        return why == BN_DROP_VERSION ? BN_MDROP_VERSION : BN_MDROP_HEADER;
    if (h->kind != BN_MSG_REPORT)
        return BN_MDROP_KIND;
    if (h->swarm_id != m->swarm.swarm_id)
        return BN_MDROP_SWARM;
    if (h->sender >= m->n || h->origin != h->sender)
        return BN_MDROP_SENDER;
    if ((m->swarm.curve || auth_id != BN_AUTH_NONE) && auth_id != h->sender)
        return BN_MDROP_AUTH;
    if (h->epoch >= m->E || h->round < (uint64_t) h->epoch * m->R
        || h->round > (uint64_t) (h->epoch + 1) * m->R)
        return BN_MDROP_EPOCH;
    if (h->dtype != BN_DTYPE_F32)
        return BN_MDROP_DTYPE;
    return BN_MDROP_NONE;
}

/* Honest: exactly the swarm's model; Byzantine: no model. */
static bn_monitor_drop_t s_check_payload(const bn_monitor_t *m, const bn_wire_header_t *h,
                                         bool honest, size_t plen)
{
    if (honest && plen == 0)
        return BN_MDROP_EMPTY;
    if (honest && (h->dim != m->dim || plen != m->dim * sizeof(float)))
        return BN_MDROP_DIM;
    if (!honest && (plen != 0 || (h->dim != 0 && h->dim != m->dim)))
        return BN_MDROP_DIM;
    return BN_MDROP_NONE;
}

static void s_note_drop(bn_monitor_t *m, bn_monitor_drop_t why, uint32_t sender)
{
    m->drops[why]++;
    uint32_t who = sender < m->n ? sender : m->n;
    bool *w = &m->warned[(size_t) who * BN_MDROP_COUNT + why];
    if (!*w && !m->replaying) {
        *w = true;
        if (who < m->n)
            BN_WARN("dropped a report claiming node %u: %s (logged once per node and reason)",
                    sender, bn_monitor_drop_name(why));
        else
            BN_WARN("dropped a report: %s (logged once per reason)", bn_monitor_drop_name(why));
    }
}

/* ---- epochs ------------------------------------------------------------ */

/* The epoch budget in force: R round timeouts + grace, or twice the slowest
 * epoch an honest node has taken so far when that is longer (a loaded or
 * slow machine, where compute, not the round timeout, sets the pace), at
 * most S_PACE_CAP budgets (so that forged reports cannot postpone the
 * deadlines without end). */
#define S_PACE_CAP 10.0
static double s_budget(const bn_monitor_t *m)
{
    return fmax(m->budget, fmin(2 * m->pace, S_PACE_CAP * m->budget));
}

double bn_monitor_deadline(const bn_monitor_t *m, uint32_t i, uint32_t e)
{
    double budget = s_budget(m);
    for (uint32_t p = e; p-- > 0;) {
        const s_cell_t *c = s_cell(m, p, i);
        if (c->have)
            return c->t_recv + (e - p) * budget;
    }
    return m->start + m->first_extra + (e + 1) * budget;
}

/* An honest node's report of epoch e arrived live at `now`: the time per
 * epoch since its previous live report (or since the monitor's start, the
 * node's start-up included), kept when it is the slowest so far.  Replayed
 * reports carry no arrival time and are skipped. */
static void s_note_pace(bn_monitor_t *m, uint32_t i, uint32_t e, double now)
{
    double since = m->start;
    uint32_t epochs = e + 1;
    for (uint32_t p = e; p-- > 0;) {
        const s_cell_t *c = s_cell(m, p, i);
        if (c->have) {
            if (!c->live)
                return;
            since = c->t_recv;
            epochs = e - p;
            break;
        }
    }
    double per_epoch = (now - since) / epochs;
    if (per_epoch > m->pace)
        m->pace = per_epoch;
}

static void s_fill_cell(bn_monitor_t *m, s_cell_t *c, const bn_report_t *r)
{
    c->have = true;
    c->accuracy = r->accuracy;
    double rounds = r->rounds ? (double) r->rounds : 1.0;
    c->sec_per_round = r->rounds ? r->t_epoch / rounds : 0;
    c->t_compute = r->t_compute / rounds;
    c->t_wait = r->t_wait / rounds;
    c->t_aggregate = r->t_aggregate / rounds;
    c->t_encode = r->t_encode / rounds;
    c->max_rss_kb = r->max_rss_kb;
    c->t_epoch = r->t_epoch;
    c->cpu_phase[0] = r->cpu_compute;
    c->cpu_phase[1] = r->cpu_aggregate;
    c->cpu_phase[2] = r->cpu_encode;
    c->cpu_phase[3] = r->cpu_eval;
    c->cpu_process = r->cpu_process;
    snprintf(c->attack, sizeof c->attack, "%s", r->attack);
    c->byz_share = NAN;
    if (r->honest && r->weight) {
        double tot = 0, byz = 0;
        for (uint32_t j = 0; j < m->n; j++) {
            tot += r->weight[j];
            if (m->is_byz[j])
                byz += r->weight[j];
        }
        if (tot > 0)
            c->byz_share = byz / tot;
    }
    char *buf = NULL;
    size_t blen = 0;
    FILE *mf = open_memstream(&buf, &blen);
    if (mf) {
        bn_report_to_json(r, mf);
        fclose(mf);
        free(c->json);
        c->json = buf;
    }
}

static int s_write_files(bn_monitor_t *m, bool stopped, double now);

/* The machine's share that went to learning (bn_monitor_epoch_t): the
 * window runs from the last node's epoch start to the last report's
 * arrival, so a swarm's start-up (nodes launched one after the other) is
 * not in the first epoch's window. */
static void s_epoch_machine(bn_monitor_t *m, uint32_t e)
{
    bn_monitor_epoch_t *ep = &m->epochs[e];
    double start = -INFINITY, end = -INFINITY, phase = 0;
    uint32_t live = 0;
    memset(ep->cpu_phase, 0, sizeof ep->cpu_phase);
    ep->cpu_nodes = 0;
    ep->sum_rss_kb = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        const s_cell_t *c = s_cell(m, e, i);
        if (!c->have)
            continue;
        ep->sum_rss_kb += c->max_rss_kb;
        if (!c->live)
            continue;
        live++;
        start = fmax(start, c->t_recv - c->t_epoch);
        end = fmax(end, c->t_recv);
        for (int k = 0; k < 4; k++) {
            ep->cpu_phase[k] += c->cpu_phase[k];
            phase += c->cpu_phase[k];
        }
        ep->cpu_nodes += c->cpu_process;
    }
    ep->wall = live ? fmax(end - start, 0.0) : NAN;
    ep->efficiency = live && ep->wall > 0 ? phase / (ep->wall * m->cores) : NAN;
}

/* The epoch's figures from its cells; consensus from the open models, or
 * (replay) from the journal. */
static void s_epoch_figures(bn_monitor_t *m, uint32_t e)
{
    bn_monitor_epoch_t *ep = &m->epochs[e];
    uint32_t acc_n = 0, share_n = 0;
    double acc_sum = 0, share_sum = 0;
    ep->min_acc = INFINITY;
    ep->max_acc = -INFINITY;
    ep->honest_reported = 0;
    ep->sec_per_round = ep->t_compute = ep->t_wait = ep->t_aggregate = ep->t_encode = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        s_cell_t *c = s_cell(m, e, i);
        if (c->have && c->max_rss_kb > ep->max_rss_kb)
            ep->max_rss_kb = c->max_rss_kb;
        if (!c->have || m->is_byz[i])
            continue;
        ep->honest_reported++;
        if (!isnan(c->accuracy)) {
            acc_sum += c->accuracy;
            acc_n++;
            ep->min_acc = fmin(ep->min_acc, c->accuracy);
            ep->max_acc = fmax(ep->max_acc, c->accuracy);
        }
        if (!isnan(c->byz_share)) {
            share_sum += c->byz_share;
            share_n++;
        }
        ep->sec_per_round += c->sec_per_round;
        ep->t_compute += c->t_compute;
        ep->t_wait += c->t_wait;
        ep->t_aggregate += c->t_aggregate;
        ep->t_encode += c->t_encode;
    }
    ep->mean_acc = acc_n ? acc_sum / acc_n : NAN;
    if (!acc_n)
        ep->min_acc = ep->max_acc = NAN;
    ep->byz_share = share_n ? share_sum / share_n : NAN;
    double k = ep->honest_reported ? ep->honest_reported : NAN;
    ep->sec_per_round /= k;
    ep->t_compute /= k;
    ep->t_wait /= k;
    ep->t_aggregate /= k;
    ep->t_encode /= k;
    s_epoch_machine(m, e);
}

static void s_journal_drops(bn_monitor_t *m)
{
    s_jrec_t rec;
    msgpack_packer *pk = s_jrec_begin(&rec, 2, S_REC_DROPS);
    msgpack_pack_array(pk, BN_MDROP_COUNT);
    for (int k = 0; k < BN_MDROP_COUNT; k++)
        msgpack_pack_uint64(pk, m->drops[k]);
    s_jrec_append(m, &rec);
}

static void s_journal_close(bn_monitor_t *m, uint32_t e)
{
    s_journal_drops(m);
    s_jrec_t rec;
    msgpack_packer *pk = s_jrec_begin(&rec, 4, S_REC_CLOSE);
    msgpack_pack_uint32(pk, e);
    msgpack_pack_double(pk, m->epochs[e].consensus);
    msgpack_pack_uint32(pk, m->epochs[e].models);
    s_jrec_append(m, &rec);
}

static void s_print_epoch(const bn_monitor_t *m, uint32_t e)
{
    const bn_monitor_epoch_t *ep = &m->epochs[e];
    if (m->quiet || m->replaying)
        return;
    printf("epoch %3u/%u  accuracy mean %.4f min %.4f max %.4f  consensus %.3g  byz-weight %.3g  "
           "%.3f s/round (compute %.3f wait %.3f aggregate %.4f encode %.4f)  honest %u  "
           "learning %.1f%% of %.1f s x %u cores  rss sum %.0f MB max %.1f MB\n",
           e + 1, m->E, ep->mean_acc, ep->min_acc, ep->max_acc, ep->consensus, ep->byz_share,
           ep->sec_per_round, ep->t_compute, ep->t_wait, ep->t_aggregate, ep->t_encode,
           ep->honest_reported, 100.0 * ep->efficiency, ep->wall, m->cores,
           ep->sum_rss_kb / 1024.0, ep->max_rss_kb / 1024.0);
    fflush(stdout);
}

/* Closes epoch e: figures, consensus over the honest finite models (NAN
 * without one), models freed, journal, results rewritten. */
static void s_close_epoch(bn_monitor_t *m, uint32_t e, double consensus, uint32_t models,
                          double now)
{
    bn_monitor_epoch_t *ep = &m->epochs[e];
    if (ep->closed)
        return;
    ep->closed = true;
    s_epoch_figures(m, e);
    if (!m->replaying) {
        const float **xs = calloc(m->n ? m->n : 1, sizeof *xs);
        models = 0;
        for (uint32_t i = 0; xs && i < m->n; i++)
            if (s_cell(m, e, i)->x)
                xs[models++] = s_cell(m, e, i)->x;
        consensus = xs ? bn_consensus_error(xs, models, m->dim, m->mean_scratch) : NAN;
        free(xs);
    }
    ep->consensus = consensus;
    ep->models = models;
    for (uint32_t i = 0; i < m->n; i++) {
        bn_free(s_cell(m, e, i)->x);
        s_cell(m, e, i)->x = NULL;
    }
    if (m->replaying)
        return;
    s_journal_close(m, e);
    s_print_epoch(m, e);
    s_write_files(m, false, now);
}

/* True when every honest node reported epoch e or is past its deadline. */
static bool s_epoch_due(const bn_monitor_t *m, uint32_t e, double now)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (!m->is_byz[i] && !s_cell(m, e, i)->have && now < bn_monitor_deadline(m, i, e))
            return false;
    return true;
}

/* Records an accepted report: cell, model, journal, maybe the epoch's close. */
static void s_record(bn_monitor_t *m, const bn_report_t *r, const bn_monitor_frame_t *fr,
                     double now)
{
    if (!m->is_byz[r->node])
        s_note_pace(m, r->node, r->epoch, now);
    s_cell_t *c = s_cell(m, r->epoch, r->node);
    s_fill_cell(m, c, r);
    c->t_recv = now;
    c->live = true;
    c->model = S_MODEL_NONE;
    /* A diverged honest model (NaN) must not poison eq. (3) for the others. */
    if (r->honest && fr[2].size) {
        if (!bn_wire_payload_finite(fr[2].data, m->dim)) {
            c->model = S_MODEL_NONFINITE;
            m->models_nonfinite++;
            BN_WARN("node %u's model of epoch %u is not finite: left out of the consensus error",
                    r->node, r->epoch + 1);
        } else if ((c->x = bn_alloc_floats(m->dim))) {
            c->model = S_MODEL_FINITE;
            bn_wire_payload_decode(fr[2].data, m->dim, c->x);
        }
    }
    s_jrec_t rec;
    msgpack_packer *pk = s_jrec_begin(&rec, 5, S_REC_REPORT);
    msgpack_pack_uint32(pk, r->node);
    msgpack_pack_uint32(pk, r->epoch);
    msgpack_pack_bin(pk, fr[1].size);
    msgpack_pack_bin_body(pk, fr[1].data, fr[1].size);
    msgpack_pack_uint32(pk, (uint32_t) c->model);
    s_jrec_append(m, &rec);
    if (!m->epochs[r->epoch].closed && s_epoch_due(m, r->epoch, now))
        s_close_epoch(m, r->epoch, NAN, 0, now);
}

bn_monitor_drop_t bn_monitor_accept(bn_monitor_t *m, const bn_monitor_frame_t *fr, int n_frames,
                                    uint32_t auth_id, double now)
{
    bn_wire_header_t h;
    memset(&h, 0, sizeof h);
    bn_report_t r;
    memset(&r, 0, sizeof r);
    bn_monitor_drop_t why = s_check_frames(m, fr, n_frames, auth_id, &h);
    uint32_t sender = why == BN_MDROP_NONE || why > BN_MDROP_SENDER ? h.sender : UINT32_MAX;
    if (why == BN_MDROP_NONE && bn_report_unpack(fr[1].data, fr[1].size, &r) != BN_OK)
        why = BN_MDROP_METRICS;
    if (why == BN_MDROP_NONE
        && (r.node != h.sender || r.epoch != h.epoch || r.topology_fp != h.topology))
        why = BN_MDROP_MISMATCH;
    /* the header's "c" as the nodes check it, then the metrics' copy */
    if (why == BN_MDROP_NONE && h.config != m->config_fp)
        why = BN_MDROP_CONFIG;
    if (why == BN_MDROP_NONE)
        why = s_check_metrics(m, &r);
    if (why == BN_MDROP_NONE)
        why = s_check_payload(m, &h, r.honest, fr[2].size);
    if (why == BN_MDROP_NONE && s_cell(m, h.epoch, h.sender)->have)
        why = BN_MDROP_DUPLICATE;
    /* An attacker's report is kept in its record even after its epoch
     * closed (its figures do not enter the epoch's); an honest one is late. */
    if (why == BN_MDROP_NONE && r.honest && m->epochs[h.epoch].closed)
        why = BN_MDROP_LATE;
    if (why == BN_MDROP_NONE)
        s_record(m, &r, fr, now);
    else
        s_note_drop(m, why, sender);
    free(r.weight);
    return why;
}

/* One journal record; false ends the replay. */
static bool s_replay_record(bn_monitor_t *m, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2)
        return false;
    const msgpack_object *a = o->via.array.ptr;
    if (o->via.array.size == 2 && a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER
        && a[0].via.u64 == S_REC_DROPS && a[1].type == MSGPACK_OBJECT_ARRAY
        && a[1].via.array.size == BN_MDROP_COUNT) {
        for (int k = 0; k < BN_MDROP_COUNT; k++)
            if (a[1].via.array.ptr[k].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return false;
        for (int k = 0; k < BN_MDROP_COUNT; k++)
            m->drops[k] = a[1].via.array.ptr[k].via.u64;
        return true;
    }
    if (o->via.array.size < 4)
        return false;
    for (int i = 0; i < 2; i++)
        if (a[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return false;
    uint64_t kind = a[0].via.u64;
    if (kind == S_REC_CLOSE && o->via.array.size == 4 && a[1].via.u64 < m->E
        && (a[2].type == MSGPACK_OBJECT_FLOAT64 || a[2].type == MSGPACK_OBJECT_FLOAT32)
        && a[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        /* trust nothing, not even our own file: the figures must be possible */
        uint32_t e = (uint32_t) a[1].via.u64, honest = 0;
        for (uint32_t i = 0; i < m->n; i++)
            honest += s_cell(m, e, i)->have && !m->is_byz[i];
        double c = a[2].via.f64;
        uint64_t models = a[3].via.u64;
        if (m->epochs[e].closed || models > honest || isnan(c) != (models == 0) || c < 0)
            return false;
        s_close_epoch(m, e, c, (uint32_t) models, m->start);
        return true;
    }
    if (kind != S_REC_REPORT || o->via.array.size != 5 || a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER
        || a[3].type != MSGPACK_OBJECT_BIN || a[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER
        || a[4].via.u64 > S_MODEL_NONFINITE)
        return false;
    bn_report_t r;
    if (bn_report_unpack(a[3].via.bin.ptr, a[3].via.bin.size, &r) != BN_OK)
        return false;
    bool ok = r.node == a[1].via.u64 && r.epoch == a[2].via.u64 && r.node < m->n
              && r.epoch < m->E && s_check_metrics(m, &r) == BN_MDROP_NONE
              && !s_cell(m, r.epoch, r.node)->have;
    if (ok) {
        s_cell_t *c = s_cell(m, r.epoch, r.node);
        s_fill_cell(m, c, &r);
        c->t_recv = m->start;
        c->model = (int) a[4].via.u64;
        if (c->model == S_MODEL_NONFINITE)
            m->models_nonfinite++;
    }
    free(r.weight);
    return ok;
}

int bn_monitor_tick(bn_monitor_t *m, double now, char *err, size_t errlen)
{
    for (uint32_t e = 0; e < m->E && m->io_rc == BN_OK; e++)
        if (!m->epochs[e].closed && s_epoch_due(m, e, now))
            s_close_epoch(m, e, NAN, 0, now);
    return m->io_rc == BN_OK ? BN_OK : bn_fail(err, errlen, m->io_rc, "%s", m->io_err);
}

bn_monitor_node_state_t bn_monitor_node_state(const bn_monitor_t *m, uint32_t i, double now)
{
    if (s_cell(m, m->E - 1, i)->have)
        return BN_NODE_FINISHED;
    return now >= bn_monitor_deadline(m, i, m->E - 1) ? BN_NODE_FAILED : BN_NODE_RUNNING;
}

bool bn_monitor_done(const bn_monitor_t *m, double now)
{
    for (uint32_t e = 0; e < m->E; e++)
        if (!m->epochs[e].closed)
            return false;
    for (uint32_t i = 0; i < m->n; i++)
        if (bn_monitor_node_state(m, i, now) == BN_NODE_RUNNING)
            return false;
    return true;
}

/* ---- output ------------------------------------------------------------ */

static void s_json_field(FILE *f, const char *key, double v, int digits)
{
    fprintf(f, ", \"%s\": ", key);
    bn_json_number(f, v, digits);
}

/* "config": the swarm-wide options plus the swarm's facts.  They never
 * change, so the object is built once (bn_monitor_new), not at every
 * rewrite of summary.json. */
static char *s_config_json(const bn_monitor_t *m)
{
    char *buf = NULL, *opt = NULL;
    size_t len = 0, olen = 0;
    FILE *mf = open_memstream(&opt, &olen);
    if (!mf)
        return NULL;
    bn_options_to_json(&m->opt, mf);
    fclose(mf);
    FILE *f = opt ? open_memstream(&buf, &len) : NULL;
    if (f) {
        if (olen >= 2 && opt[olen - 1] == '}')
            fprintf(f, "%.*s, ", (int) (olen - 1), opt);
        else
            fputc('{', f);
        fprintf(f, "\"nodes\": %u, \"rounds_per_epoch\": %u, \"model_dim\": %zu, \"swarm\": ",
                m->n, m->R, m->dim);
        bn_json_string(f, m->swarm.name);
        fprintf(f, ", \"config_fingerprint\": \"%016llx\"}", (unsigned long long) m->config_fp);
        fclose(f);
    }
    free(opt);
    return buf;
}

/* The epoch's efficiency figures (docs/metrics.md, "The machine's share"). */
static void s_write_machine(const bn_monitor_t *m, const bn_monitor_epoch_t *ep, FILE *f)
{
    s_json_field(f, "sum_node_rss_mb", ep->sum_rss_kb / 1024.0, 6);
    s_json_field(f, "efficiency", ep->efficiency, 4);
    fprintf(f, ", \"machine\": {\"wall_seconds\": ");
    bn_json_number(f, ep->wall, 4);
    fprintf(f, ", \"cores\": %u", m->cores);
    double phase = ep->cpu_phase[0] + ep->cpu_phase[1] + ep->cpu_phase[2] + ep->cpu_phase[3];
    s_json_field(f, "cpu_learning", phase, 4);
    s_json_field(f, "cpu_nodes", ep->cpu_nodes, 4);
    fprintf(f, ", \"cpu_split\": {\"compute\": ");
    bn_json_number(f, ep->cpu_phase[0], 4);
    s_json_field(f, "aggregate", ep->cpu_phase[1], 4);
    s_json_field(f, "encode", ep->cpu_phase[2], 4);
    s_json_field(f, "eval", ep->cpu_phase[3], 4);
    fprintf(f, "}}");
}

static void s_write_epochs(const bn_monitor_t *m, FILE *f)
{
    bool first = true;
    for (uint32_t e = 0; e < m->E; e++) {
        const bn_monitor_epoch_t *ep = &m->epochs[e];
        if (!ep->closed)
            continue;
        fprintf(f, "%s\n  {\"epoch\": %u", first ? "" : ",", e + 1);
        first = false;
        s_json_field(f, "mean_accuracy", ep->mean_acc, 6);
        s_json_field(f, "min_accuracy", ep->min_acc, 6);
        s_json_field(f, "max_accuracy", ep->max_acc, 6);
        s_json_field(f, "consensus_error", ep->consensus, 6);
        s_json_field(f, "byzantine_weight", ep->byz_share, 6);
        fprintf(f, ", \"honest_reported\": %u, \"models\": %u", ep->honest_reported, ep->models);
        s_json_field(f, "max_node_rss_mb", ep->max_rss_kb / 1024.0, 6);
        s_json_field(f, "seconds_per_round", ep->sec_per_round, 4);
        fprintf(f, ", \"round_split\": {\"compute\": ");
        bn_json_number(f, ep->t_compute, 4);
        s_json_field(f, "wait", ep->t_wait, 4);
        s_json_field(f, "aggregate", ep->t_aggregate, 4);
        s_json_field(f, "encode", ep->t_encode, 4);
        fprintf(f, "}");
        s_write_machine(m, ep, f);
        fprintf(f, "}");
    }
}

static void s_write_node(const bn_monitor_t *m, uint32_t i, uint32_t last_closed, bool stopped,
                         double now, FILE *f)
{
    double acc = NAN;
    uint32_t last_e = UINT32_MAX;
    const char *attack = m->is_byz[i] ? "unknown" : "none";
    uint64_t rss_kb = 0;
    for (uint32_t e = 0; e < m->E; e++) {
        const s_cell_t *c = s_cell(m, e, i);
        if (!c->have)
            continue;
        last_e = e;
        rss_kb = BN_MAX(rss_kb, c->max_rss_kb);
        attack = c->attack;
        if (!isnan(c->accuracy))
            acc = c->accuracy;
    }
    bn_monitor_node_state_t st = bn_monitor_node_state(m, i, now);
    if (stopped && st == BN_NODE_RUNNING && last_closed != UINT32_MAX
        && (last_e == UINT32_MAX || last_e < last_closed))
        st = BN_NODE_FAILED;
    static const char *names[] = { "running", "finished", "failed" };
    fprintf(f, "%s\n  {\"id\": %u, \"role\": \"%s\", \"attack\": ", i ? "," : "", i,
            m->is_byz[i] ? "byzantine" : "honest");
    bn_json_string(f, attack);
    s_json_field(f, "accuracy", acc, 6);
    s_json_field(f, "max_rss_mb", rss_kb / 1024.0, 6);
    fprintf(f, ", \"state\": \"%s\", \"failed\": %s, \"last_epoch\": %u, \"epochs\": [", names[st],
            st == BN_NODE_FAILED ? "true" : "false", last_e == UINT32_MAX ? 0 : last_e + 1);
    bool first = true;
    for (uint32_t e = 0; e < m->E; e++) {
        const s_cell_t *c = s_cell(m, e, i);
        if (c->have && c->json) {
            fprintf(f, "%s%s", first ? "" : ", ", c->json);
            first = false;
        }
    }
    fprintf(f, "]}");
}

static void s_write_summary_to(const bn_monitor_t *m, bool stopped, double now, FILE *f)
{
    uint32_t last_closed = UINT32_MAX;
    for (uint32_t e = 0; e < m->E; e++)
        if (m->epochs[e].closed)
            last_closed = e;
    fprintf(f, "{\"config\": %s", m->config_json);
    fprintf(f, ",\n \"epochs\": [");
    s_write_epochs(m, f);
    fprintf(f, "\n ],\n \"nodes\": [");
    for (uint32_t i = 0; i < m->n; i++)
        s_write_node(m, i, last_closed, stopped, now, f);
    uint64_t total = 0;
    for (int k = 1; k < BN_MDROP_COUNT; k++)
        total += m->drops[k];
    fprintf(f, "\n ],\n \"dropped_reports\": %llu, \"report_drops\": {",
            (unsigned long long) total);
    bool first = true;
    for (int k = 1; k < BN_MDROP_COUNT; k++)
        if (m->drops[k]) {
            fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", bn_monitor_drop_name(k),
                    (unsigned long long) m->drops[k]);
            first = false;
        }
    fprintf(f, "}, \"models_nonfinite\": %llu}\n", (unsigned long long) m->models_nonfinite);
}

static void s_write_csv_to(const bn_monitor_t *m, FILE *f)
{
    fprintf(f, "epoch,mean_accuracy,min_accuracy,max_accuracy,consensus_error,byzantine_weight,"
               "seconds_per_round,honest_reported,models,efficiency,wall_seconds,cores,"
               "cpu_learning,cpu_nodes,sum_node_rss_mb,max_node_rss_mb\n");
    for (uint32_t e = 0; e < m->E; e++) {
        const bn_monitor_epoch_t *ep = &m->epochs[e];
        if (ep->closed)
            fprintf(f, "%u,%.6f,%.6f,%.6f,%.6g,%.6g,%.4f,%u,%u,%.4f,%.3f,%u,%.3f,%.3f,%.1f,%.1f\n",
                    e + 1, ep->mean_acc, ep->min_acc, ep->max_acc, ep->consensus, ep->byz_share,
                    ep->sec_per_round, ep->honest_reported, ep->models, ep->efficiency, ep->wall,
                    m->cores, ep->cpu_phase[0] + ep->cpu_phase[1] + ep->cpu_phase[2]
                    + ep->cpu_phase[3], ep->cpu_nodes, ep->sum_rss_kb / 1024.0,
                    ep->max_rss_kb / 1024.0);
    }
}

/* Rewrites summary.json and epochs.csv, each whole or not at all. */
static int s_write_files(bn_monitor_t *m, bool stopped, double now)
{
    if (m->io_rc != BN_OK)
        return m->io_rc;
    static const char *names[2] = { "summary.json", "epochs.csv" };
    for (int k = 0; k < 2; k++) {
        char path[BN_PATH_MAX + 32], err[BN_PATH_MAX + 128];
        snprintf(path, sizeof path, "%s/%s", m->out, names[k]);
        bn_outfile_t *o = bn_outfile_open(path, err, sizeof err);
        if (!o) {
            s_io_fail(m, err);
            return m->io_rc;
        }
        if (k == 0)
            s_write_summary_to(m, stopped, now, bn_outfile_stream(o));
        else
            s_write_csv_to(m, bn_outfile_stream(o));
        if (bn_outfile_commit(&o, err, sizeof err) != BN_OK) {
            s_io_fail(m, err);
            return m->io_rc;
        }
    }
    return BN_OK;
}

int bn_monitor_finish(bn_monitor_t *m, double now, bool stopped, char *err, size_t errlen)
{
    for (uint32_t e = 0; e < m->E && m->io_rc == BN_OK; e++) {
        bool any = false;
        for (uint32_t i = 0; i < m->n && !any; i++)
            any = s_cell(m, e, i)->have;
        if (!m->epochs[e].closed && (any || !stopped))
            s_close_epoch(m, e, NAN, 0, now);
    }
    s_journal_drops(m);
    s_write_files(m, stopped, now);
    return m->io_rc == BN_OK ? BN_OK : bn_fail(err, errlen, m->io_rc, "%s", m->io_err);
}

const bn_monitor_epoch_t *bn_monitor_epoch(const bn_monitor_t *m, uint32_t e)
{
    return e < m->E ? &m->epochs[e] : NULL;
}

const uint64_t *bn_monitor_drops(const bn_monitor_t *m) { return m->drops; }
size_t bn_monitor_model_dim(const bn_monitor_t *m) { return m->dim; }
uint32_t bn_monitor_rounds_per_epoch(const bn_monitor_t *m) { return m->R; }
uint64_t bn_monitor_config_fp(const bn_monitor_t *m) { return m->config_fp; }

/* ---- run --------------------------------------------------------------- */

/* The one place that knows the transport's message type.  Whether a
 * message came within timeout_ms (accepted or counted as a drop). */
static bool s_receive(bn_monitor_t *m, bn_transport_t *tr, int timeout_ms)
{
    bn_msg_t *rx = NULL;
    if (bn_transport_recv(tr, timeout_ms, &rx) != BN_OK)
        return false;
    bn_monitor_frame_t fr[BN_MSG_MAX_FRAMES];
    uint32_t n = bn_msg_count(rx);
    for (uint32_t k = 0; k < n && k < BN_MSG_MAX_FRAMES; k++)
        fr[k].data = bn_msg_frame(rx, k, &fr[k].size);
    /* Too many frames, or too big as a whole (none held): a bad shape. */
    if (bn_msg_oversize(rx) || n > BN_MSG_MAX_FRAMES)
        n = BN_MSG_MAX_FRAMES + 1;
    bn_monitor_accept(m, fr, (int) n, bn_msg_auth(rx), bn_now());
    bn_msg_destroy(&rx);
    return true;
}

/* Told to stop (SIGTERM/SIGINT) before every report came: the reports that
 * are already on their way are read first.  A node that has exited has
 * handed its last report to the kernel or to our socket, not to us; a
 * launcher that stops the monitor once the nodes are gone (swarm.sh, after
 * 2 s) would otherwise lose the ones a crowded machine had not let us read
 * yet.  (The reports lost at n = 300 on 2 Dec 2026 were not these: the
 * drain read none of them; they never left their nodes, see transport.c,
 * s_monitor_await.)  Reads until the socket has been
 * quiet for S_DRAIN_IDLE_S, at most S_DRAIN_MAX_S in all; how many it read. */
#define S_DRAIN_IDLE_S 1.0
#define S_DRAIN_MAX_S  10.0
static uint64_t s_drain(bn_monitor_t *m, bn_transport_t *tr, char *err, size_t errlen, int *rc)
{
    uint64_t got = 0;
    double t0 = bn_now(), last = t0;
    while (!bn_monitor_done(m, bn_now())) {
        double now = bn_now();
        if (now - last >= S_DRAIN_IDLE_S || now - t0 >= S_DRAIN_MAX_S)
            break;
        if (s_receive(m, tr, 100)) {
            got++;
            last = bn_now();
        }
        if ((*rc = bn_monitor_tick(m, bn_now(), err, errlen)) != BN_OK)
            break;
    }
    return got;
}

int bn_monitor_run(const bn_monitor_opts_t *opts, volatile sig_atomic_t *stop)
{
    char err[768] = "";
    bn_transport_t *tr = NULL;
    int rc = BN_OK;
    bn_monitor_t *m = bn_monitor_new(opts, bn_now(), err, sizeof err);
    if (!m) {
        rc = BN_EARG;
        goto fail;
    }
    char key[BN_KEY_Z85_LEN + 1];
    bn_transport_opts_t to;
    bn_transport_opts_default(&to);
    to.rcvhwm = 16;
    /* The whole REPORT: header, metrics and model (the bound is per message). */
    to.max_msg_size = (int64_t) (m->dim * sizeof(float) + BN_REPORT_MAX_BYTES + BN_WIRE_HEADER_MAX);
    if (opts->key_path) {
        if ((rc = bn_key_read(opts->key_path, key, err, sizeof err)) != BN_OK)
            goto fail;
        to.secret_key = key;
    }
    tr = bn_transport_new(&m->swarm, UINT32_MAX, m->swarm.monitor.endpoint, &to, err, sizeof err);
    if (!tr) {
        rc = BN_ENET;
        goto fail;
    }
    /* A first summary at once: the out directory is writable, and a
     * restarted monitor shows what it replayed. */
    s_write_files(m, false, bn_now());
    if ((rc = bn_monitor_tick(m, bn_now(), err, sizeof err)) != BN_OK)
        goto fail;
    while (!bn_monitor_done(m, bn_now()) && !(stop && *stop)) {
        s_receive(m, tr, 200);
        if ((rc = bn_monitor_tick(m, bn_now(), err, sizeof err)) != BN_OK)
            goto fail;
    }
    if (stop && *stop && !bn_monitor_done(m, bn_now())) {
        uint64_t got = s_drain(m, tr, err, sizeof err, &rc);
        if (rc != BN_OK)
            goto fail;
        BN_INFO("stopped: read %llu message(s) already on their way", (unsigned long long) got);
    }
    bool stopped = stop && *stop && !bn_monitor_done(m, bn_now());
    if (!stopped)
        BN_INFO("every node finished or failed: done");
    if ((rc = bn_monitor_finish(m, bn_now(), stopped, err, sizeof err)) != BN_OK)
        goto fail;
    goto done;
fail:
    BN_ERROR("%s", err[0] ? err : bn_strerror(rc));
done:
    bn_transport_destroy(&tr);
    bn_monitor_destroy(&m);
    return rc;
}
