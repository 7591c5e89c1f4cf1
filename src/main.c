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
 *    byznode check    --swarm FILE [--id K] [options]   validate, start nothing
 *    byznode rules | attacks                          names and parameters
 *
 *  Every numeric argument is parsed strictly (the whole text, in range);
 *  a bad one or an unknown option is one line on stderr and exit code 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd.h"
#include "layers.h"
#include "monitor.h"
#include "node.h"
#include "roles.h"
#include "options.h"
#include "swarmfile.h"
#include "topology.h"

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
     * written summary.json; writes then just fail.  Also a reference FIFO
     * whose owner died (refpipe.h): EPIPE, not a signal. */
    signal(SIGPIPE, SIG_IGN);
}

/* A node holds about four descriptors per neighbour (its PUSH socket's
 * connection and mailbox, the neighbour's ring and FIFO): ~800 at n = 300,
 * near the usual soft limit of 1024.  Raise the soft limit to the hard one
 * (at most 65536); where that is lower, a descriptor that cannot be had
 * makes that path fall back or drop, counted, never a crash. */
static void s_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void s_usage(FILE *f)
{
    fprintf(f,
        "usage: byznode <command> [options]\n"
        "  node     --swarm FILE --id K [options]   run one node of a swarm\n"
        "  monitor  --swarm FILE --out DIR [--key FILE] [--grace SECONDS] [--cores N]\n"
        "           --grace: seconds added to each node's epoch deadline (R round timeouts + grace),\n"
        "           (0..86400], default 20; the monitor exits when every node finished or failed\n"
        "           --cores: CPUs of the hosts the swarm runs on, for the efficiency figure\n"
        "           (default: this host's online CPUs)\n"
        "  topology --nodes N --p P [--min-degree D] [--seed S] [--epoch E] [--out FILE] [--json]\n"
        "           (byznode topology --help: ranges and defaults)\n"
        "  node     --swarm FILE --ids LIST|--ids-from-env [--key-dir DIR] [--log-dir DIR]\n"
        "           [--byzantine-attack NAME] [options]   many nodes, one process each\n"
        "  swarm-file --hosts HOSTFILE --nodes N --out FILE [--curve KEYDIR] [--port-base P]\n"
        "           [--option \"NAME VALUE\"]...    a multi-host swarm file (swarm-file --help)\n"
        "  keygen   [--out FILE]                    make a CURVE key pair (0600, never overwrites)\n"
        "  version                                  version, protocol, igraph, kernels\n"
        "  roles    --nodes N --byzantine B [--seed S]   print the Byzantine node ids\n"
        "           N in 1..100000, B in 0..N-1, S in 0..18446744073709551615 (default 1)\n"
        "  check    --swarm FILE [--id K] [node options]   validate a node's configuration\n"
        "           (swarm file, options, constraints, topology) and start nothing\n"
        "  rules    list the aggregation rules and their parameters with defaults\n"
        "  attacks  list the attacks and their parameters with defaults\n"
        "node options (also accepted as 'option NAME VALUE' lines in the swarm file;\n"
        "a node's command line may not change a [swarm-wide] option the swarm file sets):\n");
    bn_options_print_help(f);
}

/* Strict number parsing for the subcommands' own arguments: the whole text,
 * in [min, max]; else one line naming the option, the value and the range. */
static bool s_u64_arg(const char *cmd, const char *opt, const char *text, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = (text[0] >= '0' && text[0] <= '9') ? strtoull(text, &end, 10) : 0;
    if (!(text[0] >= '0' && text[0] <= '9') || errno || *end || v < min || v > max) {
        fprintf(stderr, "byznode %s: %s '%s' is not an integer in %" PRIu64 "..%" PRIu64 "\n",
                cmd, opt, text, min, max);
        return false;
    }
    *out = v;
    return true;
}

static bool s_f64_arg(const char *cmd, const char *opt, const char *text, double min, double max,
                      double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v) || !(v > min) || v > max) {
        fprintf(stderr, "byznode %s: %s '%s' is not a number in (%g, %g]\n", cmd, opt, text, min, max);
        return false;
    }
    *out = v;
    return true;
}

/* Every argument of argv[2..] must be one of `known` (NULL-terminated); a
 * name ending in '=' takes a value.  Prints one line and returns false on
 * the first unknown option or missing value. */
static bool s_known_args(const char *cmd, int argc, char **argv, const char *const *known)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        size_t k = 0, nk = 0;
        for (; known[nk]; nk++)
            ;
        bool found = false;
        for (k = 0; k < nk; k++) {
            size_t len = strcspn(known[k], "=");
            bool takes = known[k][len] == '=';
            if (strncmp(a, known[k], len) == 0 && (a[len] == '\0' || (takes && a[len] == '='))) {
                if (takes && a[len] == '\0') {
                    if (i + 1 >= argc) {
                        fprintf(stderr, "byznode %s: %s needs a value\n", cmd, a);
                        return false;
                    }
                    i++;
                }
                found = true;
                break;
            }
        }
        if (!found) {
            const char *names[16];
            char bare[16][32];
            for (k = 0; k < nk && k < 16; k++) {
                snprintf(bare[k], sizeof bare[k], "%.*s", (int) strcspn(known[k], "="), known[k]);
                names[k] = bare[k];
            }
            char sug[128];
            if (bn_options_suggest(a, names, k, sug, sizeof sug))
                fprintf(stderr, "byznode %s: unknown argument '%s' (did you mean %s?)\n", cmd, a, sug);
            else
                fprintf(stderr, "byznode %s: unknown argument '%s' (byznode --help)\n", cmd, a);
            return false;
        }
    }
    return true;
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

/* The configuration `byznode node` would run with; n_nodes gets the swarm
 * size.  Prints one line and returns false on any error. */
static bool s_node_config(const char *cmd, int argc, char **argv, bn_options_t *o, uint32_t *n_nodes)
{
    char err[512];
    const char *swarm_path = s_find_arg(argc, argv, "--swarm");
    if (!swarm_path) {
        fprintf(stderr, "byznode %s: --swarm FILE is required\n", cmd);
        return false;
    }
    bn_swarm_t swarm;
    if (bn_swarm_load(&swarm, swarm_path, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode %s: %s\n", cmd, err);
        return false;
    }
    int rc = bn_options_load(o, &swarm, argc, argv, 2, err, sizeof err);
    *n_nodes = swarm.n;
    bn_swarm_free(&swarm);
    if (rc != BN_OK) {
        fprintf(stderr, "byznode %s: %s\n", cmd, err);
        return false;
    }
    return true;
}

static int s_cmd_node(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--ids-from-env") || !strcmp(argv[i], "--ids") || !strncmp(argv[i], "--ids=", 6))
            return bn_cmd_nodes(argv[0], argc - 1, argv + 1);
    bn_options_t o;
    uint32_t n;
    if (!s_node_config("node", argc, argv, &o, &n))
        return 2;
    char tag[32];
    snprintf(tag, sizeof tag, "node %u", o.id);
    bn_log_set(o.verbose >= 2 ? BN_LOG_DEBUG : o.verbose == 1 ? BN_LOG_INFO : BN_LOG_WARN, tag);
    /* Model kernels for this CPU (or BN_KERNELS), chosen once, logged once. */
    char err[160];
    if (bn_kernels_init(err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode node: %s\n", err);
        return 2;
    }
    s_install_signals();
    s_raise_nofile();
    return bn_node_run(&o, &s_stop) == BN_OK ? 0 : 1;
}

/* byznode check: everything `node` checks before it opens a socket, and the
 * topology (a file that loads, or an Erdos-Renyi draw that qualifies).
 * Prints "ok: ..." and exits 0, or one line and exits 2. */
static int s_cmd_check(int argc, char **argv)
{
    bn_options_t o;
    uint32_t n;
    if (!s_node_config("check", argc, argv, &o, &n))
        return 2;
    char err[512];
    bn_topology_t t;
    int rc = o.topology_file[0]
        ? bn_topology_load(&t, o.topology_file, n, err, sizeof err)
        : bn_topology_er(&t, n, o.p, o.min_degree, o.seed, o.time_varying ? 0 : BN_TOPOLOGY_STATIC,
                         err, sizeof err);
    if (rc != BN_OK) {
        fprintf(stderr, "byznode check: %s\n", err);
        return 2;
    }
    bn_topology_stats_t st;
    bn_topology_stats(&t, &st);
    bn_topology_free(&t);
    if (o.topology_file[0] && st.min_degree < o.min_degree) {
        fprintf(stderr, "byznode check: %s has minimum degree %u < --min-degree %u\n", o.topology_file,
                st.min_degree, o.min_degree);
        return 2;
    }
    if (o.topology_file[0] && st.min_degree == 0) {
        fprintf(stderr, "byznode check: %s leaves a node without neighbours\n", o.topology_file);
        return 2;
    }
    printf("ok: node %u of %u, rule %s, attack %s, config fingerprint %016" PRIx64 "\n", o.id, n,
           bn_rule_name(o.rule.kind), bn_attack_name(o.attack.kind), bn_options_fingerprint(&o));
    return 0;
}

static int s_cmd_monitor(int argc, char **argv)
{
    static const char *const known[] = { "--swarm=", "--out=", "--key=", "--grace=", "--cores=", "--quiet",
                                         NULL };
    if (!s_known_args("monitor", argc, argv, known))
        return 2;
    bn_monitor_opts_t mo = { 0 };
    mo.swarm_path = s_find_arg(argc, argv, "--swarm");
    mo.out_dir = s_find_arg(argc, argv, "--out");
    mo.key_path = s_find_arg(argc, argv, "--key");
    const char *grace = s_find_arg(argc, argv, "--grace");
    mo.grace = 20.0;
    if (grace && !s_f64_arg("monitor", "--grace", grace, 0.0, 86400.0, &mo.grace))
        return 2;
    const char *cores = s_find_arg(argc, argv, "--cores");
    double cores_v = 0;
    if (cores && !s_f64_arg("monitor", "--cores", cores, 1.0, 1048576.0, &cores_v))
        return 2;
    if (cores_v != (double) (uint32_t) cores_v) {
        fprintf(stderr, "byznode monitor: --cores '%s': not an integer\n", cores);
        return 2;
    }
    mo.cores = (uint32_t) cores_v;
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
    static const char *const known[] = { "--nodes=", "--byzantine=", "--seed=", NULL };
    if (!s_known_args("roles", argc, argv, known))
        return 2;
    const char *n_s = s_find_arg(argc, argv, "--nodes"), *b_s = s_find_arg(argc, argv, "--byzantine");
    const char *seed_s = s_find_arg(argc, argv, "--seed");
    if (!n_s || !b_s) {
        fprintf(stderr, "byznode roles: --nodes N and --byzantine B are required\n");
        return 2;
    }
    uint64_t n, b, seed = 1;
    if (!s_u64_arg("roles", "--nodes", n_s, 1, 100000, &n)
        || !s_u64_arg("roles", "--byzantine", b_s, 0, n - 1, &b)
        || (seed_s && !s_u64_arg("roles", "--seed", seed_s, 0, UINT64_MAX, &seed)))
        return 2;
    bool *is_byz = calloc((size_t) n, sizeof *is_byz);
    if (!is_byz)
        return 1;
    bn_roles_byzantine(seed, (uint32_t) n, (uint32_t) b, is_byz);
    const char *sep = "";
    for (uint64_t i = 0; i < n; i++)
        if (is_byz[i]) {
            printf("%s%" PRIu64, sep, i);
            sep = " ";
        }
    printf("\n");
    free(is_byz);
    return 0;
}

/* rules, attacks: the registries' lists. */
static int s_cmd_list(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "byznode %s: takes no arguments (got '%s')\n", argv[1], argv[2]);
        return 2;
    }
    if (argv[1][0] == 'r')
        bn_rule_list(stdout);
    else
        bn_options_print_attacks(stdout);
    return 0;
}

static int s_cmd_topology(int argc, char **argv) { return bn_cmd_topology(argc - 1, argv + 1); }
static int s_cmd_keygen(int argc, char **argv) { return bn_cmd_keygen(argc - 1, argv + 1); }
static int s_cmd_version(int argc, char **argv) { return bn_cmd_version(argc - 1, argv + 1); }
static int s_cmd_swarmfile(int argc, char **argv) { return bn_cmd_swarmfile(argc - 1, argv + 1); }

/* Every command, in the order of the usage text; own_help: it answers
 * --help itself (the others print the usage). */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    bool own_help;
} s_commands[] = {
    { "node", s_cmd_node, false },         { "monitor", s_cmd_monitor, false },
    { "topology", s_cmd_topology, true },  { "swarm-file", s_cmd_swarmfile, true },
    { "keygen", s_cmd_keygen, false },     { "version", s_cmd_version, false },
    { "roles", s_cmd_roles, false },       { "check", s_cmd_check, false },
    { "rules", s_cmd_list, false },        { "attacks", s_cmd_list, false },
};

static void s_unknown_command(const char *name)
{
    const char *names[BN_ARRAY_LEN(s_commands)];
    char all[256] = "", sug[128];
    for (size_t i = 0; i < BN_ARRAY_LEN(s_commands); i++) {
        names[i] = s_commands[i].name;
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "", names[i]);
    }
    if (bn_options_suggest(name, names, BN_ARRAY_LEN(names), sug, sizeof sug))
        fprintf(stderr, "byznode: unknown command '%s' (did you mean %s?; byznode --help)\n", name, sug);
    else
        fprintf(stderr, "byznode: unknown command '%s' (commands: %s)\n", name, all);
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
    for (size_t c = 0; c < BN_ARRAY_LEN(s_commands); c++) {
        if (strcmp(argv[1], s_commands[c].name) != 0)
            continue;
        for (int i = 2; i < argc && !s_commands[c].own_help; i++)
            if (!strcmp(argv[i], "--help")) {
                s_usage(stdout);
                return 0;
            }
        return s_commands[c].run(argc, argv);
    }
    s_unknown_command(argv[1]);
    return 2;
}
