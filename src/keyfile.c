/*  keyfile.c -- CURVE key pair files: 0600, never overwritten. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int bn_keyfile_pair(char pub[41], char sec[41], char *err, size_t errlen)
{
    if (zmq_curve_keypair(pub, sec) != 0)
        return bn_fail(err, errlen, BN_ENET, "libzmq was built without CURVE support");
    return BN_OK;
}

int bn_keyfile_write(const char *path, const char *pub, const char *sec, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return bn_fail(err, errlen, BN_EIO, "%s exists already: refusing to overwrite a key", path);
        return bn_fail(err, errlen, BN_EIO, "%s: %s", path, strerror(errno));
    }
    char text[256];
    int len = snprintf(text, sizeof text,
                       "# byznode CURVE key pair: keep secret-key private; put public-key in the swarm file\n"
                       "public-key %s\nsecret-key %s\n", pub, sec);
    /* The umask may only remove bits; fchmod makes 0600 exact. */
    bool ok = fchmod(fd, 0600) == 0 && len > 0 && (size_t) len < sizeof text
              && write(fd, text, (size_t) len) == (ssize_t) len;
    ok = (close(fd) == 0) && ok;
    if (!ok) {
        int e = errno;
        unlink(path);
        return bn_fail(err, errlen, BN_EIO, "%s: cannot write the key: %s", path, strerror(e));
    }
    return BN_OK;
}

int bn_keyfile_mkdir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0)
        return BN_OK;
    struct stat st;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return BN_OK;
    return bn_fail(err, errlen, BN_EIO, "%s: cannot make the key directory: %s", path, strerror(errno));
}
