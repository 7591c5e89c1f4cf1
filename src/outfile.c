/*  outfile.c -- write to a temporary file, rename only on success; see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct bn_outfile_t {
    char *path;     /* target, owned                           */
    char *tmp;      /* "<path>.XXXXXX" beside it, owned         */
    FILE *f;        /* open on tmp until commit or abort        */
};

bn_outfile_t *bn_outfile_open(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    bn_outfile_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(path)) || !(self->tmp = malloc(n + 8))) {
        bn_fail(err, errlen, BN_ENOMEM, "out of memory for an output file");
        goto fail;
    }
    memcpy(self->tmp, path, n);
    memcpy(self->tmp + n, ".XXXXXX", 8);
    int fd = mkstemp(self->tmp);
    if (fd < 0) {
        bn_fail(err, errlen, BN_EIO, "%s: cannot create a temporary file beside it: %s", path,
                strerror(errno));
        self->tmp[0] = 0;
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
    if (self && self->tmp && self->tmp[0])
        unlink(self->tmp);
    if (self) {
        free(self->path);
        free(self->tmp);
        free(self);
    }
    return NULL;
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
    free(self);
    *self_p = NULL;
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

void bn_outfile_abort(bn_outfile_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bn_outfile_t *self = *self_p;
    if (self->f)
        fclose(self->f);
    unlink(self->tmp);
    s_free(self_p);
}
