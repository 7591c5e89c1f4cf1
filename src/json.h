/*  json.h -- the few JSON writers every module that emits JSON shares.
 *
 *  A bottom-layer module: it includes only the C library.  Output is always
 *  valid JSON text: strings are escaped and made valid UTF-8 (an invalid
 *  byte becomes U+FFFD), non-finite numbers are written as null.
 */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal: quotes, backslashes and control
 * characters escaped, invalid UTF-8 sequences replaced by U+FFFD. */
void bn_json_string(FILE *f, const char *s);

/* Writes v with %.*g precision `digits`, or null when v is NaN or infinite. */
void bn_json_number(FILE *f, double v, int digits);

#endif
