/*  outfile.c -- write to a temporary file, rename only on success; see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One struct for both sinks; a sink's own fields stay NULL in the other. */
struct bn_outfile_t {
    char  *path;    /* target, owned                                        */
    FILE  *f;       /* open until commit or abort                           */
    char  *tmp;     /* file sink: "<path>.XXXXXX" beside it, owned          */
    char  *buf;     /* memory sink: the open_memstream's content, owned     */
    size_t len;     /* memory sink: its length                              */
};

/* A zeroed outfile with path copied; NULL with the reason in err. */
static bn_outfile_t *s_new(const char *path, char *err, size_t errlen)
{
    bn_outfile_t *self = calloc(1, sizeof *self);
    if (self && !(self->path = strdup(path))) {
        free(self);
        self = NULL;
    }
    if (!self)
        bn_fail(err, errlen, BN_ENOMEM, "out of memory for an output file");
    return self;
}

FILE *bn_outfile_stream(bn_outfile_t *self)
{
    return self->f;
}

static void s_free(bn_outfile_t **self_p)
{
    bn_outfile_t *self = *self_p;
    free(self->path);
    free(self->tmp);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

void bn_outfile_abort(bn_outfile_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_outfile_t *self = *self_p;
    if (self->f)
        fclose(self->f);
    if (self->tmp)
        unlink(self->tmp);
    s_free(self_p);
}

#ifdef BN_OUTFILE_MEMORY
/* ---- the fuzz build's sink (tests/fuzz/meson.build, fuzz_monitor only) ----
 *
 * The same contract, kept in memory: the content is written to an
 * open_memstream, commit checks the stream's flush, error indicator and
 * close exactly as the file version does, then replaces the path's last
 * committed content (a table of S_MEM_FILES paths) -- the rename.  No file,
 * no fsync: the fuzzer cannot reach the file system's errors, and the unit
 * and swarm tests exercise them (tests/test_outfile.c, monitor_limits.sh). */

#define S_MEM_FILES 8

static struct { char *path, *data; size_t len; } s_mem[S_MEM_FILES];

bn_outfile_t *bn_outfile_open(const char *path, char *err, size_t errlen)
{
    bn_outfile_t *self = s_new(path, err, errlen);
    if (self && !(self->f = open_memstream(&self->buf, &self->len))) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory for an output file");
        s_free(&self);
    }
    return self;
}

int bn_outfile_commit(bn_outfile_t **self_p, char *err, size_t errlen)
{
    if (!self_p || !*self_p)
        return bn_fail(err, errlen, BN_EARG, "no output file");
    bn_outfile_t *self = *self_p;
    bool bad = fflush(self->f) != 0 || ferror(self->f);
    bad = fclose(self->f) != 0 || bad;
    self->f = NULL;
    int k = 0;
    while (k < S_MEM_FILES && s_mem[k].path && strcmp(s_mem[k].path, self->path) != 0)
        k++;
    if (bad || k == S_MEM_FILES) {
        int rc = bn_fail(err, errlen, BN_EIO, "%s: write failed (previous version kept)",
                         self->path);
        s_free(self_p);
        return rc;
    }
    if (!s_mem[k].path) {
        s_mem[k].path = self->path;
        self->path = NULL;
    }
    free(s_mem[k].data);
    s_mem[k].data = self->buf;
    s_mem[k].len = self->len;
    self->buf = NULL;
    s_free(self_p);
    return BN_OK;
}

const char *bn_outfile_memory(const char *path, size_t *len)
{
    for (int k = 0; k < S_MEM_FILES && s_mem[k].path; k++)
        if (strcmp(s_mem[k].path, path) == 0) {
            *len = s_mem[k].len;
            return s_mem[k].data;
        }
    return NULL;
}

void bn_outfile_memory_clear(void)
{
    for (int k = 0; k < S_MEM_FILES; k++) {
        free(s_mem[k].path);
        free(s_mem[k].data);
        s_mem[k].path = s_mem[k].data = NULL;
    }
}

#else  /* the files */

bn_outfile_t *bn_outfile_open(const char *path, char *err, size_t errlen)
{
    bn_outfile_t *self = s_new(path, err, errlen);
    if (!self)
        return NULL;
    size_t n = strlen(path);
    if (!(self->tmp = malloc(n + 8))) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory for an output file");
        goto fail;
    }
    memcpy(self->tmp, path, n);
    memcpy(self->tmp + n, ".XXXXXX", 8);
    int fd = mkstemp(self->tmp);
    if (fd < 0) {
        bn_fail(err, errlen, BN_EIO, "%s: cannot create a temporary file beside it: %s", path,
                strerror(errno));
        free(self->tmp);
        self->tmp = NULL;           /* nothing to remove */
        goto fail;
    }
    /* mkstemp gives 0600; results are meant to be read by others. */
    if (fchmod(fd, 0644) != 0 || !(self->f = fdopen(fd, "w"))) {
        bn_fail(err, errlen, BN_EIO, "%s: %s", self->tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    return self;
fail:
    bn_outfile_abort(&self);        /* removes tmp if it was made */
    return NULL;
}

/* fsync of the directory holding path, so the rename itself is durable.
 * Failure to open it is not an error (some file systems refuse O_RDONLY on
 * directories); a failing fsync is. */
static int s_sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return 0;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
    if (fd < 0)
        return 0;
    int rc = fsync(fd) != 0 && errno != EINVAL ? errno : 0;
    close(fd);
    return rc;
}

int bn_outfile_commit(bn_outfile_t **self_p, char *err, size_t errlen)
{
    if (!self_p || !*self_p)
        return bn_fail(err, errlen, BN_EARG, "no output file");
    bn_outfile_t *self = *self_p;
    int e = 0;
    const char *step = "write";
    if (fflush(self->f) != 0)
        e = errno, step = "write";
    else if (ferror(self->f))
        e = EIO, step = "write";
    else if (fsync(fileno(self->f)) != 0)
        e = errno, step = "fsync";
    /* fclose always releases the stream, and reports a last failed flush. */
    if (fclose(self->f) != 0 && !e)
        e = errno, step = "close";
    self->f = NULL;
    if (!e && rename(self->tmp, self->path) != 0)
        e = errno, step = "rename";
    if (e) {
        unlink(self->tmp);
        int rc = bn_fail(err, errlen, BN_EIO, "%s: %s failed: %s (previous version kept)",
                         self->path, step, strerror(e));
        s_free(self_p);
        return rc;
    }
    e = s_sync_dir(self->path);
    int rc = e ? bn_fail(err, errlen, BN_EIO, "%s: fsync of its directory failed: %s",
                         self->path, strerror(e))
               : BN_OK;
    s_free(self_p);
    return rc;
}

#endif
