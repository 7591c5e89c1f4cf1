/*  fuzz_json_check.h -- a strict JSON validator (RFC 8259) for the fuzz
 *  targets' outputs: no NaN or Infinity, no raw control characters, valid
 *  UTF-8 in strings, nesting <= 64, nothing after the value.  Test code: it
 *  is compiled without coverage instrumentation (tests/fuzz/meson.build) so
 *  that the fuzzer is guided by the monitor's branches, not the checker's.
 */
#ifndef BN_FUZZ_JSON_CHECK_H
#define BN_FUZZ_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True if text[0..len) is one valid JSON value. */
bool bn_fuzz_valid_json(const char *text, size_t len);

#endif
