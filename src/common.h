/*  common.h -- error codes, logging and small helpers shared by every module.
 *
 *  Every fallible function in byznode returns an int: BN_OK (0) on success or
 *  a negative BN_E* code.  Functions that can say more take a caller-owned
 *  `char *err, size_t errlen` buffer and write one line into it (no newline).
 */
#ifndef BN_COMMON_H
#define BN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum {
    BN_OK        =  0,
    BN_ENOMEM    = -1,   /* allocation failed                               */
    BN_EIO       = -2,   /* a file could not be opened, read or written     */
    BN_EFORMAT   = -3,   /* a file or message is malformed                  */
    BN_EARG      = -4,   /* an argument or option is out of range           */
    BN_ETIMEOUT  = -5,   /* a deadline passed                               */
    BN_ENET      = -6,   /* a ZeroMQ call failed                            */
    BN_EMISMATCH = -7,   /* peers disagree (topology fingerprint, config)   */
};

/* Static string for a BN_E* code; never NULL. */
const char *bn_strerror(int code);

typedef enum { BN_LOG_DEBUG, BN_LOG_INFO, BN_LOG_WARN, BN_LOG_ERROR } bn_log_level_t;

/* Process-wide log settings: messages below `level` are dropped; `tag` (for
 * example "node 7") prefixes every line.  Not thread-safe; call at start-up. */
void bn_log_set(bn_log_level_t level, const char *tag);
void bn_log(bn_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define BN_DEBUG(...) bn_log(BN_LOG_DEBUG, __VA_ARGS__)
#define BN_INFO(...)  bn_log(BN_LOG_INFO,  __VA_ARGS__)
#define BN_WARN(...)  bn_log(BN_LOG_WARN,  __VA_ARGS__)
#define BN_ERROR(...) bn_log(BN_LOG_ERROR, __VA_ARGS__)

/* Writes a formatted one-line message into err (if err != NULL) and returns
 * `code`, so that error paths read `return bn_fail(err, errlen, BN_EIO, ...)`. */
int bn_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads one text line (with its '\n', if any) from `file` (a FILE *) into
 * buf of cap bytes, NUL-terminated.  The bound holds before anything is
 * stored, so an endless line (/dev/zero, a binary file) costs cap bytes and
 * stops at once.  Returns the length, 0 at end of file (or on a read error:
 * check ferror), -1 when the line does not fit (cap - 1 bytes without its
 * end), -2 on a NUL byte. */
long bn_read_line(void *file, char *buf, size_t cap);

/* The error for a negative bn_read_line result `len` on line `lineno` of
 * `path` (max_line = cap - 1): "NUL byte in line" or "line longer than
 * max_line characters", into err; returns BN_EFORMAT. */
int bn_read_line_fail(long len, const char *path, unsigned lineno, int max_line, char *err, size_t errlen);

/* Reads `file` (a FILE *) line by line with bn_read_line into a buffer of
 * max_line + 1 bytes and calls fn(ctx, line, lineno, err, errlen) for each
 * (lineno 1-based; the line keeps its '\n' and fn may edit it), stopping at
 * the first result that is not BN_OK, which it returns.  Its own errors: a
 * line too long or with a NUL byte (bn_read_line_fail), "PATH: read error"
 * (BN_EIO), "PATH: out of memory" (BN_ENOMEM). */
typedef int (*bn_line_fn)(void *ctx, char *line, unsigned lineno, char *err, size_t errlen);
int bn_read_lines(void *file, const char *path, int max_line, bn_line_fn fn, void *ctx,
                  char *err, size_t errlen);

/* Opens `path` for reading and calls reader(ctx, file, err, errlen) with it (a
 * FILE *, closed after), returning its result.  A file that cannot be
 * opened: BN_EIO, "PATH: " + open_error + strerror(errno) into err (so a
 * loader keeps its own wording, "" or "cannot open: "). */
typedef int (*bn_file_fn)(void *ctx, void *file, char *err, size_t errlen);
int bn_read_file(const char *path, const char *open_error, bn_file_fn reader, void *ctx,
                 char *err, size_t errlen);

/* Grows the malloc'd array *array_p (a T ** passed as void *) of *cap
 * elements of elem bytes to twice its capacity (first when *cap is 0).
 * BN_OK, or BN_ENOMEM with the array and *cap as they were. */
int bn_grow(void *array_p, size_t *cap, size_t elem, size_t first);


/* Monotonic clock in seconds. */
double bn_now(void);
/* CPU time of the calling thread in seconds (CLOCK_THREAD_CPUTIME_ID): the
 * work a phase did, without the time the thread waited or was preempted. */
double bn_cpu_now(void);

/* The process's resource use so far (getrusage RUSAGE_SELF): CPU seconds of
 * every thread (user + system), peak RSS, voluntary and involuntary context
 * switches.  Zeros if getrusage fails. */
typedef struct {
    double   cpu;
    uint64_t max_rss_kb, nvcsw, nivcsw;
} bn_proc_usage_t;
void bn_proc_usage(bn_proc_usage_t *u);

/* 64-byte aligned allocation of n floats, zeroed; free with bn_free(). */
float *bn_alloc_floats(size_t n);
void  *bn_alloc_aligned(size_t bytes);
void   bn_free(void *p);

#define BN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
