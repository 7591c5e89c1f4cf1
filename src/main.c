/*  main.c -- the byznode command: a thin dispatcher over libbyznode.
 *
 *    byznode node     --swarm FILE --id K [options]   run one node
 *    byznode monitor  --swarm FILE --out DIR          collect a swarm's metrics
 *    byznode topology ...                             print or write a topology
 *    byznode node     --swarm FILE --ids 0-29 [...]   run many nodes, one process each
 *    byznode swarm-file --hosts H --nodes N --out F    write a multi-host swarm file (and keys)
 *    byznode keygen   [--out FILE]                    make a CURVE key pair (0600, no overwrite)
 *    byznode version                                  what hosts of one swarm must agree on
 *    byznode roles    --nodes N --byzantine B --seed S   the Byzantine set
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "monitor.h"
#include "node.h"
#include "roles.h"
#include "options.h"
#include "swarmfile.h"

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void) sig;
    s_stop = 1;
}

static void s_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A closed stdout (say, `| head`) must not kill a monitor before it has
     * written summary.json; writes then just fail. */
    signal(SIGPIPE, SIG_IGN);
}

static void s_usage(FILE *f)
{
    fprintf(f,
        "usage: byznode <command> [options]\n"
        "  node     --swarm FILE --id K [options]   run one node of a swarm\n"
        "  monitor  --swarm FILE --out DIR [--key FILE] [--grace SECONDS]\n"
        "  topology --nodes N --p P [--min-degree D] [--seed S] [--epoch E] [--out FILE] [--json]\n"
        "  node     --swarm FILE --ids LIST|--ids-from-env [--key-dir DIR] [--log-dir DIR]\n"
        "           [--byzantine-attack NAME] [options]   many nodes, one process each\n"
        "  swarm-file --hosts HOSTFILE --nodes N --out FILE [--curve KEYDIR] [--port-base P]\n"
        "           [--option \"NAME VALUE\"]...    a multi-host swarm file (swarm-file --help)\n"
        "  keygen   [--out FILE]                    make a CURVE key pair (0600, never overwrites)\n"
        "  version                                  version, protocol, igraph, kernels\n"
        "  roles    --nodes N --byzantine B [--seed S]   print the Byzantine node ids\n"
        "node options (also accepted as 'option NAME VALUE' lines in the swarm file):\n");
    bn_options_print_help(f);
}

static const char *s_find_arg(int argc, char **argv, const char *name)
{
    for (int i = 2; i < argc; i++) {
        size_t len = strlen(name);
        if (strcmp(argv[i], name) == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], name, len) == 0 && argv[i][len] == '=')
            return argv[i] + len + 1;
    }
    return NULL;
}

static int s_cmd_node(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--ids-from-env") || !strcmp(argv[i], "--ids") || !strncmp(argv[i], "--ids=", 6))
            return bn_cmd_nodes(argv[0], argc - 1, argv + 1);
    bn_options_t o;
    bn_options_default(&o);
    char err[512];
    const char *swarm_path = s_find_arg(argc, argv, "--swarm");
    if (!swarm_path) {
        fprintf(stderr, "byznode node: --swarm FILE is required\n");
        return 2;
    }
    bn_swarm_t swarm;
    if (bn_swarm_load(&swarm, swarm_path, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        return 2;
    }
    int rc = BN_OK;
    for (uint32_t i = 0; i < swarm.n_options && rc == BN_OK; i++)
        rc = bn_options_set(&o, swarm.option_names[i], swarm.option_values[i], err, sizeof err);
    uint32_t n = swarm.n;
    bn_swarm_free(&swarm);
    if (rc == BN_OK)
        rc = bn_options_parse_argv(&o, argc, argv, 2, err, sizeof err);
    if (rc == BN_OK)
        rc = bn_options_finish(&o, n, err, sizeof err);
    if (rc != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        return 2;
    }
    char tag[32];
    snprintf(tag, sizeof tag, "node %u", o.id);
    bn_log_set(o.verbose >= 2 ? BN_LOG_DEBUG : o.verbose == 1 ? BN_LOG_INFO : BN_LOG_WARN, tag);
    s_install_signals();
    return bn_node_run(&o, &s_stop) == BN_OK ? 0 : 1;
}

static int s_cmd_monitor(int argc, char **argv)
{
    bn_monitor_opts_t mo = { 0 };
    mo.swarm_path = s_find_arg(argc, argv, "--swarm");
    mo.out_dir = s_find_arg(argc, argv, "--out");
    mo.key_path = s_find_arg(argc, argv, "--key");
    const char *grace = s_find_arg(argc, argv, "--grace");
    mo.grace = grace ? atof(grace) : 20.0;
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--quiet"))
            mo.quiet = true;
    if (!mo.swarm_path || !mo.out_dir) {
        fprintf(stderr, "byznode monitor: --swarm FILE and --out DIR are required\n");
        return 2;
    }
    bn_log_set(BN_LOG_INFO, "monitor");
    s_install_signals();
    return bn_monitor_run(&mo, &s_stop) == BN_OK ? 0 : 1;
}

static int s_cmd_roles(int argc, char **argv)
{
    const char *n_s = s_find_arg(argc, argv, "--nodes"), *b_s = s_find_arg(argc, argv, "--byzantine");
    const char *seed_s = s_find_arg(argc, argv, "--seed");
    if (!n_s || !b_s) {
        fprintf(stderr, "byznode roles: --nodes N and --byzantine B are required\n");
        return 2;
    }
    long n = strtol(n_s, NULL, 10), b = strtol(b_s, NULL, 10);
    if (n < 1 || n > 100000 || b < 0 || b >= n) {
        fprintf(stderr, "byznode roles: need 1 <= nodes <= 100000 and 0 <= byzantine < nodes\n");
        return 2;
    }
    bool *is_byz = calloc((size_t) n, sizeof *is_byz);
    if (!is_byz)
        return 1;
    bn_roles_byzantine(seed_s ? strtoull(seed_s, NULL, 10) : 1, (uint32_t) n, (uint32_t) b, is_byz);
    const char *sep = "";
    for (long i = 0; i < n; i++)
        if (is_byz[i]) {
            printf("%s%ld", sep, i);
            sep = " ";
        }
    printf("\n");
    free(is_byz);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("byznode 0.1.0\n");
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") && strcmp(argv[1], "topology") != 0
            && strcmp(argv[1], "swarm-file") != 0) {
            s_usage(stdout);
            return 0;
        }
    if (!strcmp(argv[1], "node"))
        return s_cmd_node(argc, argv);
    if (!strcmp(argv[1], "monitor"))
        return s_cmd_monitor(argc, argv);
    if (!strcmp(argv[1], "topology"))
        return bn_cmd_topology(argc - 1, argv + 1);
    if (!strcmp(argv[1], "keygen"))
        return bn_cmd_keygen(argc - 1, argv + 1);
    if (!strcmp(argv[1], "version"))
        return bn_cmd_version(argc - 1, argv + 1);
    if (!strcmp(argv[1], "swarm-file"))
        return bn_cmd_swarmfile(argc - 1, argv + 1);
    if (!strcmp(argv[1], "roles"))
        return s_cmd_roles(argc, argv);
    fprintf(stderr, "byznode: unknown command '%s'\n", argv[1]);
    s_usage(stderr);
    return 2;
}
