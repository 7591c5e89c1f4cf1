/*  fuzz_monitor.c -- libFuzzer target for the monitor's message path.
 *
 *  Every input is a fresh monitor (the swarm of fuzz_monitor_swarm.h, out
 *  directory on /dev/shm) fed a journal and a sequence of messages:
 *
 *      u16 LE J, J bytes     the content of OUT/monitor.journal before the
 *                            monitor starts (J = 0: no journal), so the
 *                            replay path is fuzzed too
 *      then records          flags byte:
 *                              bits 0-1  frames - 1 (1..4 frames)
 *                              bit 2     an auth id byte follows (0xff = none)
 *                              bit 3     the last frame is replaced by a model
 *                                        of the swarm's size, every value
 *                                        0.01 * (next byte), 0xff = NaN
 *                              bits 4-7  the clock advances by this * 0.5 s
 *                            then per frame: u16 LE length, that many bytes
 *                            (cut at the end of the input)
 *
 *  After each message bn_monitor_tick(); at the end bn_monitor_finish()
 *  writes summary.json and epochs.csv.  Properties (trapped):
 *    * accept returns a valid reason and counts exactly that one drop (or
 *      none when it accepts);
 *    * a closed epoch has honest_reported <= honest nodes, models <=
 *      honest_reported, a consensus error that is NaN exactly when models
 *      is 0 (and otherwise >= 0);
 *    * summary.json parses as JSON (a strict validator below: no NaN, no
 *      bare control characters, valid UTF-8 in strings).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "monitor.h"
#include "transport.h"
#include "fuzz_monitor_swarm.h"

static void s_check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

/* ---- a strict JSON validator (RFC 8259), enough for our own output ---- */

typedef struct {
    const unsigned char *p, *end;
    int depth;
} s_json_t;

static void s_ws(s_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
        j->p++;
}

static bool s_lit(s_json_t *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t) (j->end - j->p) < n || memcmp(j->p, w, n))
        return false;
    j->p += n;
    return true;
}

static bool s_str(s_json_t *j)
{
    if (j->p >= j->end || *j->p++ != '"')
        return false;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = *j->p++;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j->p >= j->end)
                return false;
            c = *j->p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++, j->p++)
                    if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p) || !*j->p)
                        return false;
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return false;
            }
        } else if (c >= 0x80) {
            int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            if (!len || c == 0xC0 || c == 0xC1 || c > 0xF4)
                return false;
            for (int i = 1; i < len; i++, j->p++)
                if (j->p >= j->end || (*j->p & 0xC0) != 0x80)
                    return false;
        }
    }
    return j->p < j->end && *j->p++ == '"';
}

static bool s_num(s_json_t *j)
{
    const unsigned char *s = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9'))
        return false;
    if (*j->p == '0')
        j->p++;
    else
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9'))
            return false;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9'))
            return false;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    return j->p > s;
}

static bool s_value(s_json_t *j);

static bool s_members(s_json_t *j, bool object)
{
    j->p++;
    s_ws(j);
    if (j->p < j->end && *j->p == (object ? '}' : ']')) {
        j->p++;
        return true;
    }
    for (;;) {
        s_ws(j);
        if (object) {
            if (!s_str(j))
                return false;
            s_ws(j);
            if (j->p >= j->end || *j->p++ != ':')
                return false;
        }
        if (!s_value(j))
            return false;
        s_ws(j);
        if (j->p >= j->end)
            return false;
        unsigned char c = *j->p++;
        if (c == (object ? '}' : ']'))
            return true;
        if (c != ',')
            return false;
    }
}

static bool s_value(s_json_t *j)
{
    s_ws(j);
    if (j->p >= j->end || ++j->depth > 64)
        return false;
    bool ok;
    switch (*j->p) {
    case '{': ok = s_members(j, true); break;
    case '[': ok = s_members(j, false); break;
    case '"': ok = s_str(j); break;
    case 't': ok = s_lit(j, "true"); break;
    case 'f': ok = s_lit(j, "false"); break;
    case 'n': ok = s_lit(j, "null"); break;
    default:  ok = s_num(j); break;
    }
    j->depth--;
    return ok;
}

static bool s_valid_json_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static unsigned char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    s_json_t j = { buf, buf + n, 0 };
    if (!s_value(&j))
        return false;
    s_ws(&j);
    return j.p == j.end;
}

/* ---- the harness --------------------------------------------------------- */

static char s_dir[256], s_out[300], s_journal[340], s_summary[340];
static const char *s_swarm;
static float *s_model;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    snprintf(s_dir, sizeof s_dir, "/dev/shm/bn-fuzz-monitor.%d", (int) getpid());
    mkdir(s_dir, 0700);
    snprintf(s_out, sizeof s_out, "%s/out", s_dir);
    mkdir(s_out, 0700);
    snprintf(s_journal, sizeof s_journal, "%s/monitor.journal", s_out);
    snprintf(s_summary, sizeof s_summary, "%s/summary.json", s_out);
    s_swarm = s_fuzz_swarm_write(s_dir);
    s_model = malloc(7850 * sizeof(float));
    bn_log_set((bn_log_level_t) (BN_LOG_ERROR + 1), "fuzz");   /* quiet */
    return s_swarm && s_model ? 0 : -1;
}

static uint32_t s_u16(const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 2) {
        *p = end;
        return 0;
    }
    uint32_t v = (uint32_t) (*p)[0] | ((uint32_t) (*p)[1] << 8);
    *p += 2;
    return v;
}

static void s_check_epochs(const bn_monitor_t *m)
{
    for (uint32_t e = 0; e < S_FUZZ_E; e++) {
        const bn_monitor_epoch_t *ep = bn_monitor_epoch(m, e);
        if (!ep->closed)
            continue;
        s_check(ep->honest_reported <= S_FUZZ_N - 1 && ep->models <= ep->honest_reported);
        s_check(isnan(ep->consensus) == (ep->models == 0));
        s_check(isnan(ep->consensus) || ep->consensus >= 0);
    }
}

static void s_one_message(bn_monitor_t *m, const uint8_t **pp, const uint8_t *end, double *now)
{
    const uint8_t *p = *pp;
    uint8_t flags = *p++;
    int nf = (flags & 3) + 1;
    uint32_t auth = BN_AUTH_NONE;
    if ((flags & 4) && p < end) {
        auth = *p == 0xff ? BN_AUTH_NONE : *p % 8;
        p++;
    }
    *now += (flags >> 4) * 0.5;
    bn_monitor_frame_t fr[4];
    for (int k = 0; k < nf; k++) {
        uint32_t len = s_u16(&p, end);
        if (len > (size_t) (end - p))
            len = (uint32_t) (end - p);
        fr[k].data = p;
        fr[k].size = len;
        p += len;
    }
    if ((flags & 8) && p < end) {
        float v = *p == 0xff ? NAN : 0.01f * (float) *p;
        p++;
        size_t dim = bn_monitor_model_dim(m);
        for (size_t i = 0; i < dim; i++)
            s_model[i] = v;
        fr[nf - 1].data = s_model;
        fr[nf - 1].size = dim * sizeof(float);
    }
    uint64_t before[BN_MDROP_COUNT];
    memcpy(before, bn_monitor_drops(m), sizeof before);
    bn_monitor_drop_t why = bn_monitor_accept(m, fr, nf, auth, *now);
    s_check((unsigned) why < BN_MDROP_COUNT);
    const uint64_t *after = bn_monitor_drops(m);
    for (int k = 0; k < BN_MDROP_COUNT; k++)
        s_check(after[k] == before[k] + (why != BN_MDROP_NONE && k == (int) why));
    char err[512];
    s_check(bn_monitor_tick(m, *now, err, sizeof err) == BN_OK);
    s_check_epochs(m);
    *pp = p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    uint32_t jlen = s_u16(&p, end);
    if (jlen > (size_t) (end - p))
        jlen = (uint32_t) (end - p);
    unlink(s_journal);
    unlink(s_summary);
    if (jlen) {
        FILE *f = fopen(s_journal, "wb");
        s_check(f && fwrite(p, 1, jlen, f) == jlen && fclose(f) == 0);
    }
    p += jlen;
    bn_monitor_opts_t o = { .swarm_path = s_swarm, .out_dir = s_out, .grace = S_FUZZ_GRACE,
                            .quiet = true };
    char err[512];
    double now = S_FUZZ_T0;
    bn_monitor_t *m = bn_monitor_new(&o, now, err, sizeof err);
    s_check(m != NULL);
    s_check_epochs(m);
    while (p < end)
        s_one_message(m, &p, end, &now);
    s_check(bn_monitor_finish(m, now, (size & 1) != 0, err, sizeof err) == BN_OK);
    s_check_epochs(m);
    s_check(s_valid_json_file(s_summary));
    bn_monitor_destroy(&m);
    return 0;
}
