/*  fuzz_report.c -- libFuzzer target for the REPORT metrics decoder.
 *
 *  The whole input is one metrics frame, handed to bn_report_unpack() in
 *  place (an overread is an AddressSanitizer report).  Properties, trapped
 *  when they fail (docs/fuzzing.md):
 *    * a refused frame leaves the report all zero and nothing allocated;
 *    * an accepted one obeys the decoder's contract: weight NULL or n_nodes
 *      finite entries, n_nodes <= BN_REPORT_MAX_NODES, only accuracy and the
 *      losses may be NaN, none infinite, the attack name is [a-z0-9-];
 *    * it re-packs and decodes to the same fields (the key table round trip);
 *    * its JSON line is written without error.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void s_check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static bool s_same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bn_report_t r;
    if (bn_report_unpack(data, size, &r) != BN_OK) {
        static const bn_report_t zero;
        s_check(memcmp(&r, &zero, sizeof r) == 0);
        return 0;
    }
    s_check(r.n_nodes <= BN_REPORT_MAX_NODES);
    const double must[] = { r.t_compute, r.t_wait, r.t_aggregate, r.t_encode, r.t_eval, r.t_epoch,
                            r.cpu_compute, r.cpu_aggregate, r.cpu_encode, r.cpu_eval,
                            r.cpu_process };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        s_check(isfinite(must[i]));
    s_check(!isinf(r.accuracy) && !isinf(r.test_loss) && !isinf(r.train_loss));
    for (const char *c = r.attack; *c; c++)
        s_check((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-');
    for (uint32_t i = 0; r.weight && i < r.n_nodes; i++)
        s_check(isfinite(r.weight[i]));

    msgpack_sbuffer sb;
    bn_report_encode(&r, &sb);
    bn_report_t b;
    s_check(bn_report_unpack(sb.data, sb.size, &b) == BN_OK);
    s_check(b.node == r.node && b.epoch == r.epoch && b.n_nodes == r.n_nodes
            && b.honest == r.honest && b.final == r.final && b.resumed == r.resumed
            && !strcmp(b.attack, r.attack) && b.eval_images == r.eval_images
            && b.bytes_sent == r.bytes_sent && b.bytes_received == r.bytes_received
            && b.msgs_sent == r.msgs_sent && b.msgs_received == r.msgs_received
            && b.send_dropped == r.send_dropped && b.rounds == r.rounds
            && b.rounds_timed_out == r.rounds_timed_out && b.missing == r.missing
            && b.max_rss_kb == r.max_rss_kb && b.fault_dropped == r.fault_dropped
            && b.fault_delayed == r.fault_delayed && b.rule_nonfinite == r.rule_nonfinite
            && b.topology_fp == r.topology_fp && b.config_fp == r.config_fp
            && b.degree == r.degree && b.rounds_skipped == r.rounds_skipped
            && b.peers_given_up == r.peers_given_up && b.peers_restored == r.peers_restored
            && !memcmp(b.drops, r.drops, sizeof r.drops));
    s_check(s_same_double(b.accuracy, r.accuracy) && s_same_double(b.test_loss, r.test_loss)
            && s_same_double(b.train_loss, r.train_loss) && b.t_compute == r.t_compute
            && b.t_wait == r.t_wait && b.t_aggregate == r.t_aggregate
            && b.t_encode == r.t_encode && b.t_eval == r.t_eval && b.t_epoch == r.t_epoch
            && b.cpu_compute == r.cpu_compute && b.cpu_aggregate == r.cpu_aggregate
            && b.cpu_encode == r.cpu_encode && b.cpu_eval == r.cpu_eval
            && b.cpu_process == r.cpu_process && b.ctx_voluntary == r.ctx_voluntary
            && b.ctx_involuntary == r.ctx_involuntary);
    s_check((b.weight == NULL) == (r.weight == NULL));
    for (uint32_t i = 0; r.weight && i < r.n_nodes; i++)
        s_check(b.weight[i] == r.weight[i]);

    char *json = NULL;
    size_t jlen = 0;
    FILE *f = open_memstream(&json, &jlen);
    if (f) {
        bn_report_to_json(&r, f);
        s_check(!ferror(f));
        fclose(f);
        s_check(jlen > 2 && json[0] == '{' && json[jlen - 1] == '}');
        free(json);
    }
    free(b.weight);
    free(r.weight);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
