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

int bn_cmd_topology(int argc, char **argv)
{
    static const struct option longopts[] = {
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
    uint64_t nodes = 0, min_degree = 0, seed = 1, epoch = BN_TOPOLOGY_STATIC;
    double p = -1.0;
    const char *file = NULL, *out = NULL, *min_degree_arg = NULL;
    bool json = false, have_nodes = false, have_p = false, have_seed = false, have_epoch = false;

    optind = 0;   /* full re-initialisation (GNU), in case main() used getopt */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!s_parse_u64(optarg, S_MAX_NODES, &nodes) || nodes < 1) {
                char range[32];
                snprintf(range, sizeof range, "1..%u", S_MAX_NODES);
                return s_bad("--nodes", optarg, range);
            }
            have_nodes = true;
            break;
        case 'p': {
            char *end = NULL;
            errno = 0;
            p = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(p >= 0.0 && p <= 1.0))
                return s_bad("--p", optarg, "a number in [0, 1]");
            have_p = true;
            break;
        }
        case 'd':
            if (!s_parse_u64(optarg, UINT32_MAX, &min_degree))
                return s_bad("--min-degree", optarg, "0..N-1");
            min_degree_arg = optarg;
            break;
        case 's':
            if (!s_parse_u64(optarg, UINT64_MAX, &seed))
                return s_bad("--seed", optarg, "0..18446744073709551615");
            have_seed = true;
            break;
        case 'e':
            if (!s_parse_u64(optarg, (uint64_t) BN_TOPOLOGY_STATIC - 1, &epoch))
                return s_bad("--epoch", optarg, "0..4294967294");
            have_epoch = true;
            break;
        case 'f':
            file = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "byznode topology: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "byznode topology: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "byznode topology: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }

    char err[512] = "";
    bn_topology_t t;
    int rc;
    if (file) {
        if (have_p || have_seed || have_epoch) {
            fprintf(stderr, "byznode topology: --file cannot be combined with --p, --seed or --epoch\n");
            return 2;
        }
        rc = bn_topology_load(&t, file, (uint32_t) nodes, err, sizeof err);
    } else {
        if (!have_nodes || !have_p) {
            fprintf(stderr, "byznode topology: --nodes and --p are required (or --file)\n");
            return 2;
        }
        if (min_degree > nodes - 1) {
            char range[32];
            snprintf(range, sizeof range, "0..%" PRIu64, nodes - 1);
            return s_bad("--min-degree", min_degree_arg, range);
        }
        rc = bn_topology_er(&t, (uint32_t) nodes, p, (uint32_t) min_degree, seed,
                            (uint32_t) epoch, err, sizeof err);
    }
    if (rc != BN_OK) {
        fprintf(stderr, "byznode topology: %s\n", err);
        return 2;
    }

    bn_topology_stats_t s;
    bn_topology_stats(&t, &s);
    if (json) {
        printf("{\"n\": %u, \"edges\": %u, \"min_degree\": %u, \"mean_degree\": %.4f, "
               "\"max_degree\": %u, \"connected\": %s, ", t.n, s.edges, s.min_degree,
               s.mean_degree, s.max_degree, s.connected ? "true" : "false");
        if (s.connected)
            printf("\"diameter\": %u, ", s.diameter);
        else
            printf("\"diameter\": null, ");
        printf("\"draws\": %u, \"fingerprint\": \"%016" PRIx64 "\"}\n", t.draws, t.fingerprint);
    } else {
        printf("n            %u\n", t.n);
        printf("edges        %u\n", s.edges);
        printf("degree       min %u  mean %.2f  max %u\n", s.min_degree, s.mean_degree, s.max_degree);
        printf("connected    %s\n", s.connected ? "yes" : "no");
        if (s.connected)
            printf("diameter     %u\n", s.diameter);
        else
            printf("diameter     infinite\n");
        printf("draws        %u\n", t.draws);
        printf("fingerprint  %016" PRIx64 "\n", t.fingerprint);
    }

    int code = 0;
    if (file && min_degree_arg && s.min_degree < min_degree) {
        fprintf(stderr, "byznode topology: %s has minimum degree %u < --min-degree %s\n",
                file, s.min_degree, min_degree_arg);
        code = 2;
    }
    if (out && bn_topology_save(&t, out, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode topology: %s\n", err);
        code = 2;
    }
    bn_topology_free(&t);
    return code;
}
