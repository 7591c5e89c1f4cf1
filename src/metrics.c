/*  metrics.c -- report encoding and eq. (3); see metrics.h. */
#include "metrics.h"
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void s_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, k, n);
}

#define U(k, v) do { s_key(pk, k); msgpack_pack_uint64(pk, (uint64_t) (v)); } while (0)
#define D(k, v) do { s_key(pk, k); msgpack_pack_double(pk, (double) (v)); } while (0)
#define B(k, v) do { s_key(pk, k); if (v) msgpack_pack_true(pk); else msgpack_pack_false(pk); } while (0)

void bn_report_pack(const bn_report_t *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 34);
    U("node", r->node);
    U("epoch", r->epoch);
    U("n_nodes", r->n_nodes);
    B("honest", r->honest);
    B("final", r->final);
    B("resumed", r->resumed);
    s_key(pk, "attack");
    msgpack_pack_str(pk, strlen(r->attack));
    msgpack_pack_str_body(pk, r->attack, strlen(r->attack));
    D("accuracy", r->accuracy);
    D("test_loss", r->test_loss);
    D("train_loss", r->train_loss);
    U("eval_images", r->eval_images);
    U("bytes_sent", r->bytes_sent);
    U("bytes_received", r->bytes_received);
    U("msgs_sent", r->msgs_sent);
    U("msgs_received", r->msgs_received);
    U("send_dropped", r->send_dropped);
    U("rounds", r->rounds);
    U("rounds_timed_out", r->rounds_timed_out);
    U("missing", r->missing);
    U("max_rss_kb", r->max_rss_kb);
    U("fault_dropped", r->fault_dropped);
    U("fault_delayed", r->fault_delayed);
    U("rule_nonfinite", r->rule_nonfinite);
    D("t_compute", r->t_compute);
    D("t_wait", r->t_wait);
    D("t_aggregate", r->t_aggregate);
    D("t_encode", r->t_encode);
    D("t_eval", r->t_eval);
    D("t_epoch", r->t_epoch);
    U("topology", r->topology_fp);
    U("degree", r->degree);
    s_key(pk, "drops");
    msgpack_pack_array(pk, BN_DROP_COUNT);
    for (int i = 0; i < BN_DROP_COUNT; i++)
        msgpack_pack_uint64(pk, r->drops[i]);
    s_key(pk, "weight");
    if (r->weight) {
        msgpack_pack_array(pk, r->n_nodes);
        for (uint32_t i = 0; i < r->n_nodes; i++)
            msgpack_pack_float(pk, r->weight[i]);
    } else {
        msgpack_pack_nil(pk);
    }
    s_key(pk, "reserved");
    msgpack_pack_nil(pk);
}

static bool s_num(const msgpack_object *o, double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double) o->via.u64; return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double) o->via.i64; return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          *out = o->via.f64; return true;
    default: return false;
    }
}

int bn_report_unpack(const void *buf, size_t len, bn_report_t *r)
{
    memset(r, 0, sizeof *r);
    r->accuracy = NAN;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = BN_EFORMAT;
    if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        goto done;
    const msgpack_object *o = &up.data;
    if (o->type != MSGPACK_OBJECT_MAP)
        goto done;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= 32)
            goto done;
        char key[32];
        memcpy(key, k->via.str.ptr, k->via.str.size);
        key[k->via.str.size] = 0;
        double d = 0;
        bool isnum = s_num(v, &d);
        /* Integers keep all 64 bits (fingerprints, byte counts). */
        uint64_t u = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : (uint64_t) (d > 0 ? d : 0);
        if (!strcmp(key, "attack")) {
            if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= sizeof r->attack)
                goto done;
            memcpy(r->attack, v->via.str.ptr, v->via.str.size);
            r->attack[v->via.str.size] = 0;
            /* An attack name is [a-z0-9-]; anything else could break the JSON
             * the monitor writes, so the whole report is refused. */
            for (const char *c = r->attack; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
                    goto done;
        } else if (!strcmp(key, "honest") || !strcmp(key, "final") || !strcmp(key, "resumed")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN)
                goto done;
            bool *dst = key[0] == 'h' ? &r->honest : key[0] == 'f' ? &r->final : &r->resumed;
            *dst = v->via.boolean;
        } else if (!strcmp(key, "drops")) {
            if (v->type != MSGPACK_OBJECT_ARRAY)
                goto done;
            for (uint32_t j = 0; j < v->via.array.size && j < BN_DROP_COUNT; j++) {
                double x;
                if (!s_num(&v->via.array.ptr[j], &x))
                    goto done;
                r->drops[j] = (uint64_t) x;
            }
        } else if (!strcmp(key, "weight")) {
            if (v->type == MSGPACK_OBJECT_NIL)
                continue;
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > 1000000)
                goto done;
            free(r->weight);
            r->weight = calloc(v->via.array.size ? v->via.array.size : 1, sizeof(float));
            if (!r->weight)
                goto done;
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                double x;
                if (!s_num(&v->via.array.ptr[j], &x))
                    goto done;
                r->weight[j] = (float) x;
            }
            r->n_nodes = v->via.array.size;
        } else if (isnum) {
#define F(name, field) else if (!strcmp(key, name)) r->field = d
#define N(name, field) else if (!strcmp(key, name)) r->field = (__typeof__(r->field)) u
            if (0) {}
            N("node", node); N("epoch", epoch);
            F("accuracy", accuracy); F("test_loss", test_loss); F("train_loss", train_loss);
            N("eval_images", eval_images); N("bytes_sent", bytes_sent);
            N("bytes_received", bytes_received); N("msgs_sent", msgs_sent);
            N("msgs_received", msgs_received); N("send_dropped", send_dropped);
            N("rounds", rounds); N("rounds_timed_out", rounds_timed_out); N("missing", missing);
            N("max_rss_kb", max_rss_kb);
            N("fault_dropped", fault_dropped); N("fault_delayed", fault_delayed);
            N("rule_nonfinite", rule_nonfinite);
            F("t_compute", t_compute); F("t_wait", t_wait); F("t_aggregate", t_aggregate);
            F("t_encode", t_encode); F("t_eval", t_eval); F("t_epoch", t_epoch);
            N("topology", topology_fp); N("degree", degree);
#undef F
#undef N
        }
    }
    rc = BN_OK;
done:
    msgpack_unpacked_destroy(&up);
    if (rc != BN_OK) {
        free(r->weight);
        r->weight = NULL;
    }
    return rc;
}

static void s_jnum(FILE *f, const char *k, double v)
{
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.6g", k, v);
    else
        fprintf(f, ", \"%s\": null", k);
}

void bn_report_to_json(const bn_report_t *r, FILE *f)
{
    fprintf(f, "{\"node\": %u, \"epoch\": %u, \"role\": \"%s\", \"attack\": \"%s\"",
            r->node, r->epoch + 1, r->honest ? "honest" : "byzantine", r->attack);
    s_jnum(f, "accuracy", r->accuracy);
    s_jnum(f, "test_loss", r->test_loss);
    s_jnum(f, "train_loss", r->train_loss);
    fprintf(f, ", \"eval_images\": %u, \"bytes_sent\": %llu, \"bytes_received\": %llu, "
               "\"msgs_sent\": %llu, \"msgs_received\": %llu, \"send_dropped\": %llu, "
               "\"rounds\": %llu, \"rounds_timed_out\": %llu, \"missing\": %llu, "
               "\"fault_dropped\": %llu, \"fault_delayed\": %llu, \"max_rss_kb\": %llu",
            r->eval_images, (unsigned long long) r->bytes_sent,
            (unsigned long long) r->bytes_received, (unsigned long long) r->msgs_sent,
            (unsigned long long) r->msgs_received, (unsigned long long) r->send_dropped,
            (unsigned long long) r->rounds, (unsigned long long) r->rounds_timed_out,
            (unsigned long long) r->missing, (unsigned long long) r->fault_dropped,
            (unsigned long long) r->fault_delayed, (unsigned long long) r->max_rss_kb);
    fprintf(f, ", \"dropped\": {");
    bool first = true;
    for (int i = 1; i < BN_DROP_COUNT; i++)
        if (r->drops[i]) {
            fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", bn_drop_reason_name(i),
                    (unsigned long long) r->drops[i]);
            first = false;
        }
    fprintf(f, "}");
    s_jnum(f, "t_compute", r->t_compute);
    s_jnum(f, "t_wait", r->t_wait);
    s_jnum(f, "t_aggregate", r->t_aggregate);
    s_jnum(f, "t_encode", r->t_encode);
    s_jnum(f, "t_eval", r->t_eval);
    s_jnum(f, "t_epoch", r->t_epoch);
    fprintf(f, ", \"topology\": \"%016llx\", \"degree\": %u, \"resumed\": %s}",
            (unsigned long long) r->topology_fp, r->degree, r->resumed ? "true" : "false");
}

double bn_consensus_error(const float *const *x, uint32_t m, size_t dim, double *mean)
{
    if (m <= 1)
        return 0.0;
    for (size_t k = 0; k < dim; k++)
        mean[k] = 0.0;
    for (uint32_t i = 0; i < m; i++)
        for (size_t k = 0; k < dim; k++)
            mean[k] += x[i][k];
    double norm2 = 0.0;
    for (size_t k = 0; k < dim; k++) {
        mean[k] /= m;
        norm2 += mean[k] * mean[k];
    }
    double sum = 0.0;
    for (uint32_t i = 0; i < m; i++) {
        double d2 = 0.0;
        for (size_t k = 0; k < dim; k++) {
            double d = x[i][k] - mean[k];
            d2 += d * d;
        }
        sum += d2;
    }
    if (norm2 == 0.0)
        return sum == 0.0 ? 0.0 : INFINITY;
    return sum / m / norm2;
}
