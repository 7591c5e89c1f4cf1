/*  cmd_topology.c -- `byznode topology`: draw or load a topology, print its
 *  statistics and fingerprint, optionally write it as an edge list.
 *
 *  Every node of a swarm draws the same graph from the same (n, p, min
 *  degree, seed, epoch); this command shows that graph before a run, so a
 *  user can check connectivity and degrees, and save it for --topology-file.
 *  Exit codes: 0 success, 2 usage error or failure (message on stderr).
 */
#include "cmd.h"
#include "topology.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_NODES 10000u

static void s_usage(FILE *out)
{
    fprintf(out,
        "usage: byznode topology --nodes N --p P [--min-degree D] [--seed S] [--epoch E]\n"
        "                        [--out FILE] [--json]\n"
        "       byznode topology --file EDGES [--nodes N] [--min-degree D] [--out FILE] [--json]\n"
        "\n"
        "Draws the connected Erdos-Renyi graph G(N, P) with every degree >= D that every\n"
        "node computes from seed S (and epoch E for a time-varying swarm), or loads an\n"
        "edge-list file, and prints its statistics and fingerprint.\n"
        "\n"
        "  --nodes N       number of nodes, 1..%u (with --file: the expected count)\n"
        "  --p P           edge probability, 0..1\n"
        "  --min-degree D  redraw until every node has degree >= D, 0..N-1 (default 0);\n"
        "                  with --file: fail unless the file's graph satisfies it\n"
        "  --seed S        run seed, 0..18446744073709551615 (default 1)\n"
        "  --epoch E       epoch of a time-varying topology, 0..4294967294\n"
        "                  (default: the static topology)\n"
        "  --file EDGES    load this edge list instead of drawing\n"
        "  --out FILE      write the edge list to FILE\n"
        "  --json          print the statistics as one JSON object\n"
        "  --help          this text\n", S_MAX_NODES);
}

static int s_bad(const char *opt, const char *val, const char *range)
{
    fprintf(stderr, "byznode topology: bad value '%s' for %s (accepted: %s)\n", val, opt, range);
    return 2;
}

/* Strict unsigned parse of the whole string; false on sign, junk or overflow. */
static bool s_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

/* The command line, parsed. */
typedef struct {
    uint64_t nodes, min_degree, seed, epoch;
    double p;
    const char *file, *out;
    const char *min_degree_arg;          /* as written, for the messages; NULL if not given */
    bool json, have_nodes, have_p, have_seed, have_epoch;
} s_args_t;

static const struct option s_longopts[] = {
    { "nodes",      required_argument, NULL, 'n' },
    { "p",          required_argument, NULL, 'p' },
    { "min-degree", required_argument, NULL, 'd' },
    { "seed",       required_argument, NULL, 's' },
    { "epoch",      required_argument, NULL, 'e' },
    { "file",       required_argument, NULL, 'f' },
    { "out",        required_argument, NULL, 'o' },
    { "json",       no_argument,       NULL, 'j' },
    { "help",       no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Takes option c (of s_longopts) with value arg into *a.  -1 to go on, -2
 * for a c that is not an option, else the exit code (0 after --help, 2 after
 * a bad value). */
static int s_option(int c, const char *arg, s_args_t *a)
{
    switch (c) {
    case 'n':
        if (!s_parse_u64(arg, S_MAX_NODES, &a->nodes) || a->nodes < 1) {
            char range[32];
            snprintf(range, sizeof range, "1..%u", S_MAX_NODES);
            return s_bad("--nodes", arg, range);
        }
        a->have_nodes = true;
        return -1;
    case 'p': {
        char *end = NULL;
        errno = 0;
        a->p = strtod(arg, &end);
        if (errno != 0 || end == arg || *end != '\0' || !(a->p >= 0.0 && a->p <= 1.0))
            return s_bad("--p", arg, "a number in [0, 1]");
        a->have_p = true;
        return -1;
    }
    case 'd':
        if (!s_parse_u64(arg, UINT32_MAX, &a->min_degree))
            return s_bad("--min-degree", arg, "0..N-1");
        a->min_degree_arg = arg;
        return -1;
    case 's':
        if (!s_parse_u64(arg, UINT64_MAX, &a->seed))
            return s_bad("--seed", arg, "0..18446744073709551615");
        a->have_seed = true;
        return -1;
    case 'e':
        if (!s_parse_u64(arg, (uint64_t) BN_TOPOLOGY_STATIC - 1, &a->epoch))
            return s_bad("--epoch", arg, "0..4294967294");
        a->have_epoch = true;
        return -1;
    case 'f': a->file = arg; return -1;
    case 'o': a->out = arg; return -1;
    case 'j': a->json = true; return -1;
    case 'h':
        s_usage(stdout);
        return 0;
    default:
        return -2;
    }
}

/* Parses argv into *a (defaults: seed 1, the static topology).  -1 to go
 * on, else the exit code. */
static int s_args_parse(int argc, char **argv, s_args_t *a)
{
    *a = (s_args_t) { .seed = 1, .epoch = BN_TOPOLOGY_STATIC, .p = -1.0 };
    optind = 0;   /* full re-initialisation (GNU), in case main() used getopt */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", s_longopts, NULL)) != -1) {
        if (c == ':') {
            fprintf(stderr, "byznode topology: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        }
        int code = s_option(c, optarg, a);
        if (code == -2) {
            fprintf(stderr, "byznode topology: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
        if (code >= 0)
            return code;
    }
    if (optind < argc) {
        fprintf(stderr, "byznode topology: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* Loads (--file) or draws the graph into *t.  0, or 2 with a message. */
static int s_graph(const s_args_t *a, bn_topology_t *t)
{
    char err[512] = "";
    int rc;
    if (a->file) {
        if (a->have_p || a->have_seed || a->have_epoch) {
            fprintf(stderr, "byznode topology: --file cannot be combined with --p, --seed or --epoch\n");
            return 2;
        }
        rc = bn_topology_load(t, a->file, (uint32_t) a->nodes, err, sizeof err);
    } else {
        if (!a->have_nodes || !a->have_p) {
            fprintf(stderr, "byznode topology: --nodes and --p are required (or --file)\n");
            return 2;
        }
        if (a->min_degree > a->nodes - 1) {
            char range[32];
            snprintf(range, sizeof range, "0..%" PRIu64, a->nodes - 1);
            return s_bad("--min-degree", a->min_degree_arg, range);
        }
        rc = bn_topology_er(t, (uint32_t) a->nodes, a->p, (uint32_t) a->min_degree, a->seed,
                            (uint32_t) a->epoch, err, sizeof err);
    }
    if (rc != BN_OK) {
        fprintf(stderr, "byznode topology: %s\n", err);
        return 2;
    }
    return 0;
}

/* The statistics on stdout: one JSON object, or aligned lines. */
static void s_print(const bn_topology_t *t, const bn_topology_stats_t *s, bool json)
{
    if (json) {
        printf("{\"n\": %u, \"edges\": %u, \"min_degree\": %u, \"mean_degree\": %.4f, "
               "\"max_degree\": %u, \"connected\": %s, ", t->n, s->edges, s->min_degree,
               s->mean_degree, s->max_degree, s->connected ? "true" : "false");
        if (s->connected)
            printf("\"diameter\": %u, ", s->diameter);
        else
            printf("\"diameter\": null, ");
        printf("\"draws\": %u, \"fingerprint\": \"%016" PRIx64 "\"}\n", t->draws, t->fingerprint);
        return;
    }
    printf("n            %u\n", t->n);
    printf("edges        %u\n", s->edges);
    printf("degree       min %u  mean %.2f  max %u\n", s->min_degree, s->mean_degree, s->max_degree);
    printf("connected    %s\n", s->connected ? "yes" : "no");
    if (s->connected)
        printf("diameter     %u\n", s->diameter);
    else
        printf("diameter     infinite\n");
    printf("draws        %u\n", t->draws);
    printf("fingerprint  %016" PRIx64 "\n", t->fingerprint);
}

int bn_cmd_topology(int argc, char **argv)
{
    s_args_t a;
    int code = s_args_parse(argc, argv, &a);
    if (code >= 0)
        return code;
    bn_topology_t t;
    if ((code = s_graph(&a, &t)) != 0)
        return code;
    bn_topology_stats_t s;
    bn_topology_stats(&t, &s);
    s_print(&t, &s, a.json);

    /* A loaded file must meet --min-degree (a draw is made to); then --out. */
    if (a.file && a.min_degree_arg && s.min_degree < a.min_degree) {
        fprintf(stderr, "byznode topology: %s has minimum degree %u < --min-degree %s\n",
                a.file, s.min_degree, a.min_degree_arg);
        code = 2;
    }
    char err[512] = "";
    if (a.out && bn_topology_save(&t, a.out, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode topology: %s\n", err);
        code = 2;
    }
    bn_topology_free(&t);
    return code;
}
