/*  fuzz_json_check.c -- see fuzz_json_check.h. */
#include "fuzz_json_check.h"

#include <string.h>

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

bool bn_fuzz_valid_json(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    s_json_t j = { p, p + len, 0 };
    if (!s_value(&j))
        return false;
    s_ws(&j);
    return j.p == j.end;
}
