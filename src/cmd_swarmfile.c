/*  cmd_swarmfile.c -- `byznode swarm-file`: the swarm file (and CURVE keys)
 *  for n nodes spread over the hosts of a hostfile.
 *
 *  Layout written (src/swarmfile.h is the format):
 *      monitor  tcp://<addr of host 0>:<port-base>
 *      node K   tcp://<addr of K's host>:<port-base + 1 + j>, j = 0, 1, ... on
 *               each address (hosts sharing an address share the numbering)
 *  A node binds its endpoint exactly as written, and ZeroMQ binds only IP
 *  addresses (or interface names), not host names: a host's address
 *  (addr=, else its name) that is not an IPv4 literal is resolved here, once,
 *  to its first IPv4 address (getaddrinfo), or refused when it does not
 *  resolve.  A loopback address among several hosts is warned about.
 *  Ids go to hosts in blocks (src/hostfile.h: placement).  A "# host" comment
 *  per host records the placement for a reader; nothing parses it.
 *  With --curve KEYDIR: KEYDIR/<host>/node-K.key for every node of the host
 *  and KEYDIR/<host 0>/monitor.key, each 0600 in a 0700 directory, so that
 *  KEYDIR/<host> is exactly what that host needs.  No key is overwritten.
 *
 *  Everything is checked before anything is written: the hostfile, the
 *  placement, every --option (with the swarm-wide constraints of
 *  bn_options_finish, e.g. min degree below n), endpoint lengths, ports, no
 *  endpoint twice, no key file present.  The written file is loaded back
 *  with bn_swarm_load as a last check.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "hostfile.h"
#include "keyfile.h"
#include "options.h"
#include "swarmfile.h"

#define S_MAX_OPTIONS 256
#define S_MAX_NODES   100000u

static void s_usage(FILE *f)
{
    fprintf(f,
        "usage: byznode swarm-file --hosts HOSTFILE --nodes N --out SWARMFILE\n"
        "                          [--curve KEYDIR] [--port-base P] [--name NAME]\n"
        "                          [--option \"NAME VALUE\"]...\n"
        "  HOSTFILE: one 'host [slots]' per line ('host 8', 'host slots=8', 'host:8';\n"
        "            'addr=A' sets the address used in its endpoints; '#' comments)\n"
        "  nodes go to hosts in blocks, as evenly as slots allow; the monitor is on\n"
        "  the first host at port P (default 7100), nodes at P+1, P+2, ... per host\n"
        "  --curve: one key pair per node and the monitor in KEYDIR/<host>/ (0600)\n");
}

typedef struct {
    char text[BN_ENDPOINT_MAX];
    long who;                   /* node id, -1 = monitor */
} s_endpoint_t;

static int s_cmp_endpoint(const void *a, const void *b)
{
    return strcmp(((const s_endpoint_t *) a)->text, ((const s_endpoint_t *) b)->text);
}

/* Directory of host h's keys and its key file for node id (id < 0: monitor). */
static int s_key_path(char *buf, size_t len, const char *keydir, const char *host, long id)
{
    int w = id < 0 ? snprintf(buf, len, "%s/%s/monitor.key", keydir, host)
                   : snprintf(buf, len, "%s/%s/node-%ld.key", keydir, host, id);
    return (w > 0 && (size_t) w < len) ? 0 : -1;
}

static void s_print_ids(FILE *f, uint32_t first, uint32_t count)
{
    if (count == 0)
        fprintf(f, "none");
    else if (count == 1)
        fprintf(f, "%u", first);
    else
        fprintf(f, "%u-%u", first, first + count - 1);
}

/* Everything the command reads, checks and writes; one per run. */
typedef struct {
    const char *hosts_path, *out_path, *keydir, *name;
    long nodes, port_base;
    const char *opt_text[S_MAX_OPTIONS];
    int n_opts;
    char opt_names[S_MAX_OPTIONS][64], opt_values[S_MAX_OPTIONS][256];
    uint32_t n;
    bn_hostfile_t hf;
    bool loopback;              /* a host's address is 127.x */
    s_endpoint_t *eps;          /* n + 1: the monitor, then node id at id + 1 */
    char (*node_pub)[41], (*node_sec)[41];
    char mon_pub[41], mon_sec[41];
    char path[4096];
} s_job_t;

/* A number argument in lo..hi; -1 when it is not one. */
static long s_parse_long(const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    return (errno || *end || x < lo || x > hi) ? -1 : x;
}

/* The command line into j: 0 = go on, 1 = --help printed, 2 = error printed. */
static int s_parse_args(s_job_t *j, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "byznode swarm-file: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--hosts"))
            j->hosts_path = v;
        else if (!strcmp(a, "--out"))
            j->out_path = v;
        else if (!strcmp(a, "--curve"))
            j->keydir = v;
        else if (!strcmp(a, "--name"))
            j->name = v;
        else if (!strcmp(a, "--nodes")) {
            j->nodes = s_parse_long(v, 1, (long) S_MAX_NODES);
            if (j->nodes < 0) {
                fprintf(stderr, "byznode swarm-file: --nodes %s: must be 1..%u\n", v, S_MAX_NODES);
                return 2;
            }
        } else if (!strcmp(a, "--port-base")) {
            j->port_base = s_parse_long(v, 1, 65534);
            if (j->port_base < 0) {
                fprintf(stderr, "byznode swarm-file: --port-base %s: must be 1..65534\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--option")) {
            if (j->n_opts == S_MAX_OPTIONS) {
                fprintf(stderr, "byznode swarm-file: more than %d --option\n", S_MAX_OPTIONS);
                return 2;
            }
            j->opt_text[j->n_opts++] = v;
        } else {
            fprintf(stderr, "byznode swarm-file: unknown argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!j->hosts_path || !j->out_path || j->nodes < 1) {
        fprintf(stderr, "byznode swarm-file: --hosts HOSTFILE, --nodes N and --out SWARMFILE are required\n");
        return 2;
    }
    j->n = (uint32_t) j->nodes;
    return 0;
}

/* --option k split into opt_names[k] / opt_values[k]; -1 (printed) when not "NAME VALUE". */
static int s_split_option(s_job_t *j, int k)
{
    const char *t = j->opt_text[k];
    while (*t == ' ' || *t == '\t')
        t++;
    size_t nl = strcspn(t, " \t");
    const char *val = t + nl;
    while (*val == ' ' || *val == '\t')
        val++;
    size_t vl = strlen(val);
    while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
        vl--;
    if (nl == 0 || nl >= sizeof j->opt_names[0] || vl == 0 || vl >= sizeof j->opt_values[0]) {
        fprintf(stderr, "byznode swarm-file: --option '%.80s': expected \"NAME VALUE\"\n", j->opt_text[k]);
        return -1;
    }
    memcpy(j->opt_names[k], t, nl);
    j->opt_names[k][nl] = '\0';
    memcpy(j->opt_values[k], val, vl);
    j->opt_values[k][vl] = '\0';
    return 0;
}

/* Options: "NAME VALUE", validated as the nodes will apply them; -1 printed. */
static int s_check_options(s_job_t *j, char *err, size_t errlen)
{
    static const char *node_local[] = { "id", "key", "out", "attack" };
    bn_options_t o;
    bn_options_default(&o);
    for (int k = 0; k < j->n_opts; k++) {
        if (s_split_option(j, k) != 0)
            return -1;
        for (int i = 0; i < k; i++)
            if (!strcmp(j->opt_names[i], j->opt_names[k])) {
                fprintf(stderr, "byznode swarm-file: --option %s given twice\n", j->opt_names[k]);
                return -1;
            }
        for (size_t i = 0; i < BN_ARRAY_LEN(node_local); i++)
            if (!strcmp(j->opt_names[k], node_local[i])) {
                fprintf(stderr, "byznode swarm-file: --option %s: node-local, it belongs on a node's "
                        "command line, not in the swarm file\n", j->opt_names[k]);
                return -1;
            }
        if (bn_options_set(&o, j->opt_names[k], j->opt_values[k], err, errlen) != BN_OK) {
            fprintf(stderr, "byznode swarm-file: --option: %s\n", err);
            return -1;
        }
    }
    if (bn_options_finish(&o, j->n, err, errlen) != BN_OK) {
        fprintf(stderr, "byznode swarm-file: %s\n", err);
        return -1;
    }
    return 0;
}

/* Addresses: IPv4 literals, resolved once here (see the banner); -1 printed. */
static int s_resolve_hosts(s_job_t *j)
{
    bn_hostfile_t *hf = &j->hf;
    for (uint32_t h = 0; h < hf->n_hosts; h++) {
        struct in_addr ip;
        if (inet_pton(AF_INET, hf->hosts[h].addr, &ip) != 1) {
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof hints);
            hints.ai_family = AF_INET;
            hints.ai_socktype = SOCK_STREAM;
            int g = getaddrinfo(hf->hosts[h].addr, NULL, &hints, &res);
            if (g != 0 || !res) {
                fprintf(stderr, "byznode swarm-file: host %s: cannot resolve '%s' (%s): give its IP with addr=A\n",
                        hf->hosts[h].name, hf->hosts[h].addr, gai_strerror(g));
                return -1;
            }
            ip = ((struct sockaddr_in *) res->ai_addr)->sin_addr;
            freeaddrinfo(res);
            inet_ntop(AF_INET, &ip, hf->hosts[h].addr, sizeof hf->hosts[h].addr);
        }
        if ((ntohl(ip.s_addr) >> 24) == 127)
            j->loopback = true;
    }
    return 0;
}

/* The endpoints of host h's nodes into j->eps; -1 printed. */
static int s_host_endpoints(s_job_t *j, uint32_t h)
{
    const bn_hostfile_t *hf = &j->hf;
    /* Ports already used on this address by earlier hosts. */
    long used = 0;
    for (uint32_t g = 0; g < h; g++)
        if (!strcmp(hf->hosts[g].addr, hf->hosts[h].addr))
            used += hf->hosts[g].count;
    for (uint32_t k = 0; k < hf->hosts[h].count; k++) {
        uint32_t id = hf->hosts[h].first + k;
        long port = j->port_base + 1 + used + k;
        if (port > 65535) {
            fprintf(stderr, "byznode swarm-file: node %u on %s would need port %ld (> 65535): "
                    "lower --port-base or use more hosts\n", id, hf->hosts[h].name, port);
            return -1;
        }
        s_endpoint_t *e = &j->eps[id + 1];
        int w = snprintf(e->text, sizeof e->text, "tcp://%s:%ld", hf->hosts[h].addr, port);
        e->who = id;
        if (w < 0 || (size_t) w >= sizeof e->text) {
            fprintf(stderr, "byznode swarm-file: node %u's endpoint is too long\n", id);
            return -1;
        }
    }
    return 0;
}

/* No endpoint twice among j->eps; -1 printed. */
static int s_check_unique(const s_job_t *j)
{
    size_t m = (size_t) j->n + 1;
    s_endpoint_t *sorted = malloc(m * sizeof *sorted);
    if (!sorted) {
        fprintf(stderr, "byznode swarm-file: out of memory\n");
        return -1;
    }
    memcpy(sorted, j->eps, m * sizeof *sorted);
    qsort(sorted, m, sizeof *sorted, s_cmp_endpoint);
    for (uint32_t k = 0; k < j->n; k++)
        if (!strcmp(sorted[k].text, sorted[k + 1].text)) {
            fprintf(stderr, "byznode swarm-file: endpoint %s would be used twice\n", sorted[k].text);
            free(sorted);
            return -1;
        }
    free(sorted);
    return 0;
}

/* Endpoints: the monitor first, then every node; -1 printed. */
static int s_make_endpoints(s_job_t *j)
{
    j->eps = calloc((size_t) j->n + 1, sizeof *j->eps);
    if (!j->eps) {
        fprintf(stderr, "byznode swarm-file: out of memory\n");
        return -1;
    }
    int w = snprintf(j->eps[0].text, sizeof j->eps[0].text, "tcp://%s:%ld", j->hf.hosts[0].addr, j->port_base);
    j->eps[0].who = -1;
    if (w < 0 || (size_t) w >= sizeof j->eps[0].text) {
        fprintf(stderr, "byznode swarm-file: the monitor's endpoint is too long\n");
        return -1;
    }
    for (uint32_t h = 0; h < j->hf.n_hosts; h++)
        if (s_host_endpoints(j, h) != 0)
            return -1;
    return s_check_unique(j);
}

/* No key file present already under j->keydir; -1 printed. */
static int s_check_no_keys(s_job_t *j)
{
    struct stat st;
    for (uint32_t h = 0; h < j->hf.n_hosts; h++)
        for (long k = (h == 0 ? -1 : 0); k < (long) j->hf.hosts[h].count; k++) {
            long id = k < 0 ? -1 : (long) j->hf.hosts[h].first + k;
            if (s_key_path(j->path, sizeof j->path, j->keydir, j->hf.hosts[h].name, id) != 0) {
                fprintf(stderr, "byznode swarm-file: key path under %s too long\n", j->keydir);
                return -1;
            }
            if (lstat(j->path, &st) == 0) {
                fprintf(stderr, "byznode swarm-file: %s exists already: refusing to overwrite a key "
                        "(use a new --curve directory)\n", j->path);
                return -1;
            }
        }
    return 0;
}

/* Host h's key directory and key files (the monitor's on host 0); -1 printed. */
static int s_write_host_keys(s_job_t *j, uint32_t h, char *err, size_t errlen)
{
    const char *host = j->hf.hosts[h].name;
    snprintf(j->path, sizeof j->path, "%s/%s", j->keydir, host);
    if (bn_keyfile_mkdir(j->path, err, errlen) != BN_OK)
        goto fail;
    if (h == 0) {
        s_key_path(j->path, sizeof j->path, j->keydir, host, -1);
        if (bn_keyfile_write(j->path, j->mon_pub, j->mon_sec, err, errlen) != BN_OK)
            goto fail;
    }
    for (uint32_t k = 0; k < j->hf.hosts[h].count; k++) {
        uint32_t id = j->hf.hosts[h].first + k;
        s_key_path(j->path, sizeof j->path, j->keydir, host, id);
        if (bn_keyfile_write(j->path, j->node_pub[id], j->node_sec[id], err, errlen) != BN_OK)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "byznode swarm-file: %s\n", err);
    return -1;
}

/* Keys: check that none exists before making any; -1 printed. */
static int s_make_keys(s_job_t *j, char *err, size_t errlen)
{
    j->node_pub = calloc(j->n, sizeof *j->node_pub);
    j->node_sec = calloc(j->n, sizeof *j->node_sec);
    if (!j->node_pub || !j->node_sec) {
        fprintf(stderr, "byznode swarm-file: out of memory\n");
        return -1;
    }
    if (s_check_no_keys(j) != 0)
        return -1;
    if (bn_keyfile_pair(j->mon_pub, j->mon_sec, err, errlen) != BN_OK)
        goto fail;
    for (uint32_t k = 0; k < j->n; k++)
        if (bn_keyfile_pair(j->node_pub[k], j->node_sec[k], err, errlen) != BN_OK)
            goto fail;
    if (bn_keyfile_mkdir(j->keydir, err, errlen) != BN_OK)
        goto fail;
    for (uint32_t h = 0; h < j->hf.n_hosts; h++)
        if (s_write_host_keys(j, h, err, errlen) != 0)
            return -1;
    memset(j->mon_sec, 0, sizeof j->mon_sec);
    memset(j->node_sec, 0, (size_t) j->n * sizeof *j->node_sec);
    return 0;
fail:
    fprintf(stderr, "byznode swarm-file: %s\n", err);
    return -1;
}

/* The swarm file itself at j->out_path; -1 printed. */
static int s_write_swarm(s_job_t *j)
{
    char swarm_name[128];
    const char *keydir = j->keydir;
    if (j->name)
        snprintf(swarm_name, sizeof swarm_name, "%s", j->name);
    else
        snprintf(swarm_name, sizeof swarm_name, "swarm-%u-%lx-%lx", j->n, (unsigned long) time(NULL),
                 (unsigned long) getpid());
    for (char *c = swarm_name; *c; c++)
        if (*c == ' ' || *c == '\t' || *c == '#')
            *c = '-';

    FILE *f = fopen(j->out_path, "w");
    if (!f) {
        fprintf(stderr, "byznode swarm-file: %s: %s\n", j->out_path, strerror(errno));
        return -1;
    }
    fprintf(f, "# byznode swarm file written by `byznode swarm-file --hosts %s --nodes %u`:\n"
               "# %u nodes on %u host(s)%s\n", j->hosts_path, j->n, j->n, j->hf.n_hosts,
            keydir ? ", CURVE keys in the --curve directory, one folder per host" : "");
    for (uint32_t h = 0; h < j->hf.n_hosts; h++) {
        fprintf(f, "# host %s %s ids ", j->hf.hosts[h].name, j->hf.hosts[h].addr);
        s_print_ids(f, j->hf.hosts[h].first, j->hf.hosts[h].count);
        fprintf(f, "%s\n", h == 0 ? " monitor" : "");
    }
    fprintf(f, "swarm %s\n", swarm_name);
    fprintf(f, "monitor %s%s%s\n", j->eps[0].text, keydir ? " " : "", keydir ? j->mon_pub : "");
    for (int k = 0; k < j->n_opts; k++)
        fprintf(f, "option %s %s\n", j->opt_names[k], j->opt_values[k]);
    for (uint32_t id = 0; id < j->n; id++)
        fprintf(f, "node %u %s%s%s\n", id, j->eps[id + 1].text, keydir ? " " : "",
                keydir ? j->node_pub[id] : "");
    if (fclose(f) != 0) {
        fprintf(stderr, "byznode swarm-file: %s: write failed\n", j->out_path);
        return -1;
    }
    return 0;
}

/* Check, make keys, write, load back; 0 or 2 (printed). */
static int s_run(s_job_t *j)
{
    char err[512];
    if (s_check_options(j, err, sizeof err) != 0)
        return 2;
    if (bn_hostfile_load(&j->hf, j->hosts_path, err, sizeof err) != BN_OK
        || bn_hostfile_place(&j->hf, j->n, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode swarm-file: %s\n", err);
        return 2;
    }
    if (s_resolve_hosts(j) != 0 || s_make_endpoints(j) != 0)
        return 2;
    if (j->keydir && s_make_keys(j, err, sizeof err) != 0)
        return 2;
    if (s_write_swarm(j) != 0)
        return 2;
    bn_swarm_t check;
    if (bn_swarm_load(&check, j->out_path, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode swarm-file: the written file does not load: %s\n", err);
        return 2;
    }
    bn_swarm_free(&check);
    if (j->loopback && j->hf.n_hosts > 1)
        fprintf(stderr, "swarm-file: warning: a host's address is a loopback address (127.x): other hosts "
                "cannot reach its nodes; give addr=IP in the hostfile\n");
    fprintf(stderr, "swarm-file: %u nodes on %u host(s) -> %s%s%s\n", j->n, j->hf.n_hosts, j->out_path,
            j->keydir ? ", keys in " : "", j->keydir ? j->keydir : "");
    return 0;
}

int bn_cmd_swarmfile(int argc, char **argv)
{
    s_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        fprintf(stderr, "byznode swarm-file: out of memory\n");
        return 2;
    }
    j->nodes = -1;
    j->port_base = 7100;
    int rc = s_parse_args(j, argc, argv);
    if (rc == 1)
        rc = 0;
    else if (rc == 0)
        rc = s_run(j);
    free(j->eps);
    free(j->node_pub);
    free(j->node_sec);
    bn_hostfile_free(&j->hf);
    free(j);
    return rc;
}
