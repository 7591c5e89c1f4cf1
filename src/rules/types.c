/*  types.c -- the parameter rows several rules read, and the option lookup
 *  (types.h).
 */
#include "types.h"

#include <string.h>

const bn_rule_param_t bn_rule_param_trim = {
    "trim", BN_RULE_PARAM_U32, 1, 0, 1e6,
    "b: Byzantine neighbours assumed (unset: --byzantine if > 0)" };
const bn_rule_param_t bn_rule_param_bucketing = {
    "bucketing", BN_RULE_PARAM_U32, 0, 0, 1e6,
    "s of s-resampling before the rule (0, 1 = off)" };

double bn_rule_opts_value(const bn_rule_opts_t *opts, const bn_rule_param_t *p)
{
    for (uint32_t i = 0; i < opts->n_set; i++)
        if (opts->set[i].param == p || strcmp(opts->set[i].param->name, p->name) == 0)
            return opts->set[i].value;
    return p->def;
}
