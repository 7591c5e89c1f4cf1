/*  cmd_keygen.c -- `byznode keygen` and `byznode version`.
 *
 *  keygen writes a CURVE key pair: to --out FILE (created 0600, never
 *  overwritten: src/keyfile.h) or, without --out, to stdout.
 *  version prints what hosts of one swarm must agree on, one "name value"
 *  line each, so that launchers can compare hosts line by line:
 *      byznode 0.1.0          this build's version
 *      protocol 1             wire protocol version (BN_WIRE_VERSION)
 *      igraph 0.10.4          igraph's version: G(n, p) draws depend on it
 *                             (pin the graph with option topology otherwise)
 *      zmq 4.3.4 curve yes    libzmq and whether it has CURVE
 *      kernels avx512 (supported: portable avx2 avx512)
 *                             the kernel set a node picks on this CPU and all
 *                             it can run (BN_KERNELS forces one; layers.h)
 */
#include <igraph.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "bn_version.h"
#include "cmd.h"
#include "keyfile.h"
#include "layers.h"
#include "wire.h"

int bn_cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strncmp(argv[i], "--out=", 6))
            out = argv[i] + 6;
        else {
            fprintf(stderr, "byznode keygen: unknown argument '%s' (usage: byznode keygen [--out FILE])\n",
                    argv[i]);
            return 2;
        }
    }
    char pub[41], sec[41], err[512];
    if (bn_keyfile_pair(pub, sec, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode keygen: %s\n", err);
        return 1;
    }
    if (out) {
        int rc = bn_keyfile_write(out, pub, sec, err, sizeof err);
        memset(sec, 0, sizeof sec);
        if (rc != BN_OK) {
            fprintf(stderr, "byznode keygen: %s\n", err);
            return 1;
        }
        return 0;
    }
    printf("# byznode CURVE key pair: keep secret-key private; put public-key in the swarm file\n"
           "public-key %s\nsecret-key %s\n", pub, sec);
    memset(sec, 0, sizeof sec);
    return 0;
}

int bn_cmd_version(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    const char *ig = NULL;
    int a = 0, b = 0, c = 0;
    igraph_version(&ig, &a, &b, &c);
    int za, zb, zc;
    zmq_version(&za, &zb, &zc);
    printf("byznode %s\n", BN_VERSION);
    printf("protocol %d\n", BN_WIRE_VERSION);
    printf("igraph %s\n", ig ? ig : "unknown");
    printf("zmq %d.%d.%d curve %s\n", za, zb, zc, zmq_has("curve") ? "yes" : "no");
    /* The kernel set a node would pick here (BN_KERNELS aside), and all it could run. */
    printf("kernels %s (supported:", bn_kernels_name(bn_kernels_best()));
    for (int k = 0; k < BN_KERNELS_COUNT; k++)
        if (bn_kernels_supported((bn_kernels_t) k))
            printf(" %s", bn_kernels_name((bn_kernels_t) k));
    printf(")\n");
    return 0;
}
