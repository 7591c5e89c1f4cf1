/*  metrics.c -- report encoding and eq. (3); see metrics.h.
 *
 *  s_fields is the one list of report keys: pack, unpack and JSON walk it.
 *  A field's type says how it travels: an unsigned integer (32 or 64 bits),
 *  a double (finite, or finite-or-NaN for "not measured" figures), a
 *  boolean, the attack name, a fingerprint (uint64 on the wire, 16 hex
 *  digits in JSON), the epoch (0-based on the wire, 1-based in JSON), the
 *  drop counters, and the weight telemetry.
 */
#include "metrics.h"
#include "json.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_U32,          /* uint32_t                                         */
    S_U64,          /* uint64_t                                         */
    S_EPOCH,        /* uint32_t, 1-based in JSON                        */
    S_FP,           /* uint64_t fingerprint, hex string in JSON         */
    S_F64,          /* double, must be finite                           */
    S_F64_NAN,      /* double, finite or NaN (not measured)             */
    S_BOOL,         /* bool                                             */
    S_ATTACK,       /* char[BN_REPORT_ATTACK_MAX], [a-z0-9-]            */
    S_DROPS,        /* uint64_t[BN_DROP_COUNT]                          */
    S_WEIGHT,       /* float * of n_nodes entries, or NULL              */
} s_type_t;

typedef struct {
    const char *key;
    s_type_t    type;
    size_t      off;
} s_field_t;

#define F(key, type, member) { key, type, offsetof(bn_report_t, member) }
static const s_field_t s_fields[] = {
    F("node",             S_U32,     node),
    F("epoch",            S_EPOCH,   epoch),
    F("n_nodes",          S_U32,     n_nodes),
    F("honest",           S_BOOL,    honest),
    F("final",            S_BOOL,    final),
    F("resumed",          S_BOOL,    resumed),
    F("attack",           S_ATTACK,  attack),
    F("accuracy",         S_F64_NAN, accuracy),
    F("test_loss",        S_F64_NAN, test_loss),
    F("train_loss",       S_F64_NAN, train_loss),
    F("eval_images",      S_U32,     eval_images),
    F("bytes_sent",       S_U64,     bytes_sent),
    F("bytes_received",   S_U64,     bytes_received),
    F("msgs_sent",        S_U64,     msgs_sent),
    F("msgs_received",    S_U64,     msgs_received),
    F("send_dropped",     S_U64,     send_dropped),
    F("rounds",           S_U64,     rounds),
    F("rounds_timed_out", S_U64,     rounds_timed_out),
    F("missing",          S_U64,     missing),
    F("rounds_skipped",   S_U64,     rounds_skipped),
    F("peers_given_up",   S_U64,     peers_given_up),
    F("peers_restored",   S_U64,     peers_restored),
    F("max_rss_kb",       S_U64,     max_rss_kb),
    F("fault_dropped",    S_U64,     fault_dropped),
    F("fault_delayed",    S_U64,     fault_delayed),
    F("shm_sent",         S_U64,     shm_sent),
    F("shm_received",     S_U64,     shm_received),
    F("rule_nonfinite",   S_U64,     rule_nonfinite),
    F("dropped",          S_DROPS,   drops),
    F("t_compute",        S_F64,     t_compute),
    F("t_wait",           S_F64,     t_wait),
    F("t_aggregate",      S_F64,     t_aggregate),
    F("t_encode",         S_F64,     t_encode),
    F("t_eval",           S_F64,     t_eval),
    F("t_epoch",          S_F64,     t_epoch),
    F("cpu_compute",      S_F64,     cpu_compute),
    F("cpu_aggregate",    S_F64,     cpu_aggregate),
    F("cpu_encode",       S_F64,     cpu_encode),
    F("cpu_eval",         S_F64,     cpu_eval),
    F("cpu_process",      S_F64,     cpu_process),
    F("ctx_voluntary",    S_U64,     ctx_voluntary),
    F("ctx_involuntary",  S_U64,     ctx_involuntary),
    F("topology",         S_FP,      topology_fp),
    F("config",           S_FP,      config_fp),
    F("degree",           S_U32,     degree),
    F("weight",           S_WEIGHT,  weight),
};
#undef F
enum { S_NFIELDS = (int) BN_ARRAY_LEN(s_fields) };

#define S_AT(r, f, T) ((T *) (void *) ((char *) (r) + (f)->off))
#define S_CAT(r, f, T) ((const T *) (const void *) ((const char *) (r) + (f)->off))

/* ---- pack ---------------------------------------------------------------- */

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void bn_report_pack(const bn_report_t *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, S_NFIELDS);
    for (int i = 0; i < S_NFIELDS; i++) {
        const s_field_t *f = &s_fields[i];
        s_pack_str(pk, f->key);
        switch (f->type) {
        case S_U32:
        case S_EPOCH:
            msgpack_pack_uint32(pk, *S_CAT(r, f, uint32_t));
            break;
        case S_U64:
        case S_FP:
            msgpack_pack_uint64(pk, *S_CAT(r, f, uint64_t));
            break;
        case S_F64:
        case S_F64_NAN:
            msgpack_pack_double(pk, *S_CAT(r, f, double));
            break;
        case S_BOOL:
            if (*S_CAT(r, f, bool))
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
            break;
        case S_ATTACK:
            s_pack_str(pk, S_CAT(r, f, char));
            break;
        case S_DROPS:
            msgpack_pack_array(pk, BN_DROP_COUNT);
            for (int k = 0; k < BN_DROP_COUNT; k++)
                msgpack_pack_uint64(pk, r->drops[k]);
            break;
        case S_WEIGHT:
            if (!r->weight) {
                msgpack_pack_nil(pk);
                break;
            }
            msgpack_pack_array(pk, r->n_nodes);
            for (uint32_t k = 0; k < r->n_nodes; k++)
                msgpack_pack_float(pk, r->weight[k]);
            break;
        }
    }
}

void bn_report_encode(const bn_report_t *r, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    bn_report_pack(r, &pk);
}

/* ---- unpack -------------------------------------------------------------- */

/* A non-negative integer in any MessagePack integer format. */
static bool s_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        *out = o->via.u64;
    else
        return false;   /* msgpack-c maps every value >= 0 to POSITIVE_INTEGER */
    return *out <= max;
}

/* Any MessagePack number as a double. */
static bool s_number(const msgpack_object *o, double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double) o->via.u64; return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double) o->via.i64; return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          *out = o->via.f64; return true;
    default:                              return false;
    }
}

static bool s_attack_name(const msgpack_object *v, char *dst)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= BN_REPORT_ATTACK_MAX)
        return false;
    /* [a-z0-9-]: anything else (quotes, NUL, bytes >= 0x80) is refused. */
    for (uint32_t i = 0; i < v->via.str.size; i++) {
        char c = v->via.str.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    memcpy(dst, v->via.str.ptr, v->via.str.size);
    dst[v->via.str.size] = 0;
    return true;
}

/* Decodes one value into its field; weight arrays are checked for length
 * after the loop (n_nodes may come later in the map). */
static bool s_field_decode(const s_field_t *f, const msgpack_object *v, bn_report_t *r,
                           const msgpack_object **weight)
{
    uint64_t u;
    double d;
    switch (f->type) {
    case S_U32:
    case S_EPOCH:
        if (!s_uint(v, UINT32_MAX, &u))
            return false;
        *S_AT(r, f, uint32_t) = (uint32_t) u;
        return true;
    case S_U64:
    case S_FP:
        if (!s_uint(v, UINT64_MAX, &u))
            return false;
        *S_AT(r, f, uint64_t) = u;
        return true;
    case S_F64:
    case S_F64_NAN:
        if (!s_number(v, &d) || isinf(d) || (isnan(d) && f->type == S_F64))
            return false;
        *S_AT(r, f, double) = d;
        return true;
    case S_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return false;
        *S_AT(r, f, bool) = v->via.boolean;
        return true;
    case S_ATTACK:
        return s_attack_name(v, S_AT(r, f, char));
    case S_DROPS:
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > BN_DROP_COUNT)
            return false;
        for (uint32_t k = 0; k < v->via.array.size; k++)
            if (!s_uint(&v->via.array.ptr[k], UINT64_MAX, &r->drops[k]))
                return false;
        return true;
    case S_WEIGHT:
        if (v->type == MSGPACK_OBJECT_NIL)
            return true;
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > BN_REPORT_MAX_NODES)
            return false;
        *weight = v;
        return true;
    }
    return false;
}

static int s_field_index(const msgpack_object *k)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return -2;
    for (int i = 0; i < S_NFIELDS; i++)
        if (strlen(s_fields[i].key) == k->via.str.size
            && !memcmp(s_fields[i].key, k->via.str.ptr, k->via.str.size))
            return i;
    return -1;
}

static bool s_weight_decode(const msgpack_object *v, bn_report_t *r)
{
    if (v->via.array.size != r->n_nodes)
        return false;
    r->weight = malloc((r->n_nodes ? r->n_nodes : 1) * sizeof(float));
    if (!r->weight)
        return false;
    for (uint32_t k = 0; k < r->n_nodes; k++) {
        double x;
        if (!s_number(&v->via.array.ptr[k], &x) || !isfinite(x) || !isfinite((float) x))
            return false;
        r->weight[k] = (float) x;
    }
    return true;
}

/* Reads a w-byte big-endian length at p[*i..); false past len. */
static bool s_be(const uint8_t *p, size_t len, size_t *i, int w, uint64_t *out)
{
    if (len - *i < (size_t) w)
        return false;
    uint64_t v = 0;
    for (int k = 0; k < w; k++)
        v = (v << 8) | p[(*i)++];
    *out = v;
    return true;
}

size_t bn_msgpack_span(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i = 0;
    uint64_t pending = 1;   /* objects still to read; each takes >= 1 byte */
    while (pending) {
        if (!p || i >= len)
            return 0;
        uint8_t c = p[i++];
        pending--;
        uint64_t skip = 0, count = 0, v = 0;
        int w = 0, kind = 0;    /* kind: 0 skip, 1 array, 2 map; w: length bytes */
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
            ;
        else if (c <= 0x8f)
            kind = 2, count = c & 0x0f;
        else if (c <= 0x9f)
            kind = 1, count = c & 0x0f;
        else if (c <= 0xbf)
            skip = c & 0x1f;
        else if (c == 0xc4 || c == 0xd9) w = 1;             /* bin8, str8 */
        else if (c == 0xc5 || c == 0xda) w = 2;             /* bin16, str16 */
        else if (c == 0xc6 || c == 0xdb) w = 4;             /* bin32, str32 */
        else if (c == 0xc7) w = 1, skip = 1;                /* ext8: + type */
        else if (c == 0xc8) w = 2, skip = 1;
        else if (c == 0xc9) w = 4, skip = 1;
        else if (c == 0xca || c == 0xce || c == 0xd2) skip = 4;
        else if (c == 0xcb || c == 0xcf || c == 0xd3) skip = 8;
        else if (c == 0xcc || c == 0xd0) skip = 1;
        else if (c == 0xcd || c == 0xd1) skip = 2;
        else if (c >= 0xd4 && c <= 0xd8) skip = 1 + (1u << (c - 0xd4));   /* fixext */
        else if (c == 0xdc) kind = 1, w = 2;
        else if (c == 0xdd) kind = 1, w = 4;
        else if (c == 0xde) kind = 2, w = 2;
        else if (c == 0xdf) kind = 2, w = 4;
        else
            return 0;                                       /* 0xc1: never used */
        if (w) {
            if (!s_be(p, len, &i, w, &v))
                return 0;
            if (kind)
                count = v;
            else
                skip += v;
        }
        if (skip > len - i)
            return 0;
        i += (size_t) skip;
        if (kind) {
            uint64_t children = kind == 2 ? 2 * count : count;
            if (children > len - i)
                return 0;
            pending += children;
        }
    }
    return i;
}

int bn_report_unpack(const void *buf, size_t len, bn_report_t *r)
{
    memset(r, 0, sizeof *r);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = BN_EFORMAT;
    bool seen[S_NFIELDS] = { false };
    const msgpack_object *weight = NULL;
    if (!buf || len == 0 || len > BN_REPORT_MAX_BYTES
        || bn_msgpack_span(buf, len) != len
        || msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        goto done;
    const msgpack_object *o = &up.data;
    if (o->type != MSGPACK_OBJECT_MAP)
        goto done;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        int idx = s_field_index(&o->via.map.ptr[i].key);
        if (idx == -2 || (idx >= 0 && seen[idx]))
            goto done;
        if (idx == -1)
            continue;   /* unknown key: a later revision's */
        seen[idx] = true;
        if (!s_field_decode(&s_fields[idx], &o->via.map.ptr[i].val, r, &weight))
            goto done;
    }
    for (int i = 0; i < S_NFIELDS; i++)
        if (!seen[i])
            goto done;
    if (r->n_nodes > BN_REPORT_MAX_NODES || (weight && !s_weight_decode(weight, r)))
        goto done;
    rc = BN_OK;
done:
    msgpack_unpacked_destroy(&up);
    if (rc != BN_OK) {
        free(r->weight);
        memset(r, 0, sizeof *r);
    }
    return rc;
}

/* ---- JSON ---------------------------------------------------------------- */

static void s_json_value(const s_field_t *f, const bn_report_t *r, FILE *out)
{
    switch (f->type) {
    case S_U32:
        fprintf(out, "%u", (unsigned) *S_CAT(r, f, uint32_t));
        break;
    case S_EPOCH:
        fprintf(out, "%llu", (unsigned long long) *S_CAT(r, f, uint32_t) + 1);
        break;
    case S_U64:
        fprintf(out, "%llu", (unsigned long long) *S_CAT(r, f, uint64_t));
        break;
    case S_FP:
        fprintf(out, "\"%016llx\"", (unsigned long long) *S_CAT(r, f, uint64_t));
        break;
    case S_F64:
    case S_F64_NAN:
        bn_json_number(out, *S_CAT(r, f, double), 9);
        break;
    case S_BOOL:
        fputs(*S_CAT(r, f, bool) ? "true" : "false", out);
        break;
    case S_ATTACK:
        bn_json_string(out, S_CAT(r, f, char));
        break;
    case S_DROPS: {
        fputc('{', out);
        bool first = true;
        for (int k = 1; k < BN_DROP_COUNT; k++)
            if (r->drops[k]) {
                fprintf(out, "%s\"%s\": %llu", first ? "" : ", ", bn_drop_reason_name(k),
                        (unsigned long long) r->drops[k]);
                first = false;
            }
        fputc('}', out);
        break;
    }
    case S_WEIGHT:
        if (!r->weight) {
            fputs("null", out);
            break;
        }
        fputc('[', out);
        for (uint32_t k = 0; k < r->n_nodes; k++) {
            if (k)
                fputs(", ", out);
            bn_json_number(out, r->weight[k], 6);
        }
        fputc(']', out);
        break;
    }
}

void bn_report_to_json(const bn_report_t *r, FILE *f)
{
    fputc('{', f);
    for (int i = 0; i < S_NFIELDS; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", s_fields[i].key);
        s_json_value(&s_fields[i], r, f);
    }
    fputc('}', f);
}

/* ---- eq. (3) ------------------------------------------------------------- */

double bn_consensus_error(const float *const *x, uint32_t m, size_t dim, double *mean)
{
    if (m == 0)
        return NAN;
    if (m == 1)
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
