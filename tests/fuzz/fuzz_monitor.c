/*  fuzz_monitor.c -- libFuzzer target for the monitor's message path.
 *
 *  One monitor per process (the swarm of fuzz_monitor_swarm.h, out
 *  directory on /dev/shm), restarted for every input by bn_monitor_reset()
 *  -- the same state as a fresh bn_monitor_new() on that directory
 *  (tests/test_monitor.c checks it) without parsing the swarm file again --
 *  and fed a journal and a sequence of messages:
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
 *  writes summary.json and epochs.csv -- in memory: this target is built
 *  with -DBN_OUTFILE_MEMORY (src/outfile.c), the journal is a real file --
 *  and bn_monitor_clear() frees everything the input allocated, so that
 *  libFuzzer's leak check stays on.  Properties (trapped):
 *    * accept returns a valid reason and counts exactly that one drop (or
 *      none when it accepts);
 *    * a closed epoch has honest_reported <= honest nodes, models <=
 *      honest_reported, a consensus error that is NaN exactly when models
 *      is 0 (and otherwise >= 0);
 *    * summary.json parses as JSON (fuzz_json_check.h: no NaN, no bare
 *      control characters, valid UTF-8 in strings).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "monitor.h"
#include "outfile.h"
#include "transport.h"
#include "fuzz_json_check.h"
#include "fuzz_monitor_swarm.h"

static void s_check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

/* ---- the harness --------------------------------------------------------- */

static char s_dir[256], s_out[300], s_journal[340], s_summary[340];
static bn_monitor_t *s_mon;   /* built once; bn_monitor_reset per input */
static float *s_models;       /* 256 models: model b has every value 0.01 b (255: NaN) */

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
    const char *swarm = s_fuzz_swarm_write(s_dir);
    bn_log_set((bn_log_level_t) (BN_LOG_ERROR + 1), "fuzz");   /* quiet */
    bn_monitor_opts_t o = { .swarm_path = swarm, .out_dir = s_out, .grace = S_FUZZ_GRACE,
                            .quiet = true };
    char err[512];
    s_mon = swarm ? bn_monitor_new(&o, S_FUZZ_T0, err, sizeof err) : NULL;
    size_t dim = s_mon ? bn_monitor_model_dim(s_mon) : 0;
    s_models = dim ? malloc(256 * dim * sizeof(float)) : NULL;
    for (size_t b = 0; s_models && b < 256; b++)
        for (size_t i = 0; i < dim; i++)
            s_models[b * dim + i] = b == 0xff ? NAN : 0.01f * (float) b;
    return s_models ? 0 : -1;
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
        size_t dim = bn_monitor_model_dim(m);
        fr[nf - 1].data = s_models + *p++ * dim;
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
    if (jlen) {
        FILE *f = fopen(s_journal, "wb");
        s_check(f && fwrite(p, 1, jlen, f) == jlen && fclose(f) == 0);
    }
    p += jlen;
    char err[512];
    double now = S_FUZZ_T0;
    bn_monitor_t *m = s_mon;
    s_check(bn_monitor_reset(m, now, err, sizeof err) == BN_OK);
    s_check_epochs(m);
    while (p < end)
        s_one_message(m, &p, end, &now);
    s_check(bn_monitor_finish(m, now, (size & 1) != 0, err, sizeof err) == BN_OK);
    s_check_epochs(m);
    size_t len = 0;
    const char *summary = bn_outfile_memory(s_summary, &len);
    s_check(summary && bn_fuzz_valid_json(summary, len));
    /* every allocation of this input freed: libFuzzer's leak check stays on */
    bn_outfile_memory_clear();
    bn_monitor_clear(m);
    return 0;
}
