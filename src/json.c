/*  json.c -- JSON string and number writers; see json.h. */
#include "json.h"

#include <math.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at c (1..4), or 0 if it is not one. */
static int s_utf8_len(const unsigned char *c)
{
    if (c[0] < 0x80)
        return 1;
    int len;
    uint32_t cp;
    if ((c[0] & 0xE0) == 0xC0) { len = 2; cp = c[0] & 0x1F; }
    else if ((c[0] & 0xF0) == 0xE0) { len = 3; cp = c[0] & 0x0F; }
    else if ((c[0] & 0xF8) == 0xF0) { len = 4; cp = c[0] & 0x07; }
    else return 0;
    for (int i = 1; i < len; i++) {
        if ((c[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (c[i] & 0x3F);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF are invalid. */
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void bn_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *) s; *c;) {
        if (*c == '"' || *c == '\\') {
            fprintf(f, "\\%c", *c++);
        } else if (*c < 0x20 || *c == 0x7F) {
            fprintf(f, "\\u%04x", *c++);
        } else {
            int len = s_utf8_len(c);
            if (len == 0) {
                fputs("\\ufffd", f);
                c++;
            } else {
                fwrite(c, 1, (size_t) len, f);
                c += len;
            }
        }
    }
    fputc('"', f);
}

void bn_json_number(FILE *f, double v, int digits)
{
    if (isfinite(v))
        fprintf(f, "%.*g", digits, v);
    else
        fputs("null", f);
}
