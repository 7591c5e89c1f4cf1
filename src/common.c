/*  common.c -- error strings, bounded line reading, logging, clock, aligned
 *  allocation. */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static bn_log_level_t s_level = BN_LOG_INFO;
static char s_tag[64] = "byznode";

const char *bn_strerror(int code)
{
    switch (code) {
    case BN_OK:        return "ok";
    case BN_ENOMEM:    return "out of memory";
    case BN_EIO:       return "i/o error";
    case BN_EFORMAT:   return "malformed input";
    case BN_EARG:      return "invalid argument";
    case BN_ETIMEOUT:  return "timed out";
    case BN_ENET:      return "network error";
    case BN_EMISMATCH: return "peers disagree";
    default:           return "unknown error";
    }
}

long bn_read_line(void *file, char *buf, size_t cap)
{
    FILE *f = file;
    size_t len = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        if (c == '\0')
            return -2;
        if (len + 1 >= cap)
            return -1;
        buf[len++] = (char) c;
        if (c == '\n')
            break;
    }
    buf[len] = '\0';
    return (long) len;
}

int bn_read_line_fail(long len, const char *path, unsigned lineno, int max_line, char *err, size_t errlen)
{
    if (len == -2)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: NUL byte in line", path, lineno);
    return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: line longer than %d characters", path, lineno, max_line);
}

int bn_grow(void *array_p, size_t *cap, size_t elem, size_t first)
{
    void *old;
    memcpy(&old, array_p, sizeof old);
    size_t nc = *cap ? 2 * *cap : first;
    if (nc < *cap || nc > SIZE_MAX / elem)
        return BN_ENOMEM;
    void *grown = realloc(old, nc * elem);
    if (!grown)
        return BN_ENOMEM;
    memcpy(array_p, &grown, sizeof grown);
    *cap = nc;
    return BN_OK;
}

int bn_read_lines(void *file, const char *path, int max_line, bn_line_fn fn, void *ctx,
                  char *err, size_t errlen)
{
    char *line = malloc((size_t) max_line + 1);
    if (!line)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
    int rc = BN_OK;
    unsigned lineno = 0;
    long len;
    while (rc == BN_OK && (len = bn_read_line(file, line, (size_t) max_line + 1)) != 0) {
        lineno++;
        if (len < 0)
            rc = bn_read_line_fail(len, path, lineno, max_line, err, errlen);
        else
            rc = fn(ctx, line, lineno, err, errlen);
    }
    free(line);
    if (rc == BN_OK && ferror((FILE *) file))
        rc = bn_fail(err, errlen, BN_EIO, "%s: read error", path);
    return rc;
}

int bn_read_file(const char *path, const char *open_error, bn_file_fn reader, void *ctx,
                 char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: %s%s", path, open_error, strerror(errno));
    int rc = reader(ctx, f, err, errlen);
    fclose(f);
    return rc;
}

void bn_log_set(bn_log_level_t level, const char *tag)
{
    s_level = level;
    if (tag)
        snprintf(s_tag, sizeof s_tag, "%s", tag);
}

void bn_log(bn_log_level_t level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (level < s_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", s_tag, names[level], line);
}

int bn_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

double bn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

double bn_cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

void bn_proc_usage(bn_proc_usage_t *u)
{
    struct rusage ru;
    memset(u, 0, sizeof *u);
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return;
    u->cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec * 1e-6
             + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec * 1e-6;
    u->max_rss_kb = (uint64_t) ru.ru_maxrss;
    u->nvcsw = (uint64_t) ru.ru_nvcsw;
    u->nivcsw = (uint64_t) ru.ru_nivcsw;
}

void *bn_alloc_aligned(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t) 63;
    if (rounded == 0)
        rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0)
        return NULL;
    memset(p, 0, rounded);
    return p;
}

float *bn_alloc_floats(size_t n)
{
    return bn_alloc_aligned(n * sizeof(float));
}

void bn_free(void *p)
{
    free(p);
}
