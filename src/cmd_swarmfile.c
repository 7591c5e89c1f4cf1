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

int bn_cmd_swarmfile(int argc, char **argv)
{
    const char *hosts_path = NULL, *out_path = NULL, *keydir = NULL, *name = NULL;
    long nodes = -1, port_base = 7100;
    const char *opt_text[S_MAX_OPTIONS];
    int n_opts = 0;
    char err[512];
    int rc = 2;
    bn_hostfile_t hf = { 0 };
    s_endpoint_t *eps = NULL;
    char (*node_pub)[41] = NULL, (*node_sec)[41] = NULL;
    char mon_pub[41] = "", mon_sec[41] = "";
    char opt_names[S_MAX_OPTIONS][64], opt_values[S_MAX_OPTIONS][256];
    char path[4096];
    FILE *f = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "byznode swarm-file: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--hosts"))
            hosts_path = v;
        else if (!strcmp(a, "--out"))
            out_path = v;
        else if (!strcmp(a, "--curve"))
            keydir = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--nodes")) {
            errno = 0;
            nodes = strtol(v, &end, 10);
            if (errno || *end || nodes < 1 || nodes > (long) S_MAX_NODES) {
                fprintf(stderr, "byznode swarm-file: --nodes %s: must be 1..%u\n", v, S_MAX_NODES);
                return 2;
            }
        } else if (!strcmp(a, "--port-base")) {
            errno = 0;
            port_base = strtol(v, &end, 10);
            if (errno || *end || port_base < 1 || port_base > 65534) {
                fprintf(stderr, "byznode swarm-file: --port-base %s: must be 1..65534\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--option")) {
            if (n_opts == S_MAX_OPTIONS) {
                fprintf(stderr, "byznode swarm-file: more than %d --option\n", S_MAX_OPTIONS);
                return 2;
            }
            opt_text[n_opts++] = v;
        } else {
            fprintf(stderr, "byznode swarm-file: unknown argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!hosts_path || !out_path || nodes < 1) {
        fprintf(stderr, "byznode swarm-file: --hosts HOSTFILE, --nodes N and --out SWARMFILE are required\n");
        return 2;
    }
    uint32_t n = (uint32_t) nodes;

    /* Options: "NAME VALUE", validated as the nodes will apply them. */
    bn_options_t o;
    bn_options_default(&o);
    for (int k = 0; k < n_opts; k++) {
        const char *t = opt_text[k];
        while (*t == ' ' || *t == '\t')
            t++;
        size_t nl = strcspn(t, " \t");
        const char *val = t + nl;
        while (*val == ' ' || *val == '\t')
            val++;
        size_t vl = strlen(val);
        while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            vl--;
        if (nl == 0 || nl >= sizeof opt_names[0] || vl == 0 || vl >= sizeof opt_values[0]) {
            fprintf(stderr, "byznode swarm-file: --option '%.80s': expected \"NAME VALUE\"\n", opt_text[k]);
            return 2;
        }
        memcpy(opt_names[k], t, nl);
        opt_names[k][nl] = '\0';
        memcpy(opt_values[k], val, vl);
        opt_values[k][vl] = '\0';
        for (int j = 0; j < k; j++)
            if (!strcmp(opt_names[j], opt_names[k])) {
                fprintf(stderr, "byznode swarm-file: --option %s given twice\n", opt_names[k]);
                return 2;
            }
        static const char *node_local[] = { "id", "key", "out", "attack" };
        for (size_t j = 0; j < BN_ARRAY_LEN(node_local); j++)
            if (!strcmp(opt_names[k], node_local[j])) {
                fprintf(stderr, "byznode swarm-file: --option %s: node-local, it belongs on a node's "
                        "command line, not in the swarm file\n", opt_names[k]);
                return 2;
            }
        if (bn_options_set(&o, opt_names[k], opt_values[k], err, sizeof err) != BN_OK) {
            fprintf(stderr, "byznode swarm-file: --option: %s\n", err);
            return 2;
        }
    }
    if (bn_options_finish(&o, n, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode swarm-file: %s\n", err);
        return 2;
    }

    if (bn_hostfile_load(&hf, hosts_path, err, sizeof err) != BN_OK
        || bn_hostfile_place(&hf, n, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode swarm-file: %s\n", err);
        goto done;
    }

    /* Addresses: IPv4 literals, resolved once here (see the banner). */
    bool loopback = false;
    for (uint32_t h = 0; h < hf.n_hosts; h++) {
        struct in_addr ip;
        if (inet_pton(AF_INET, hf.hosts[h].addr, &ip) != 1) {
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof hints);
            hints.ai_family = AF_INET;
            hints.ai_socktype = SOCK_STREAM;
            int g = getaddrinfo(hf.hosts[h].addr, NULL, &hints, &res);
            if (g != 0 || !res) {
                fprintf(stderr, "byznode swarm-file: host %s: cannot resolve '%s' (%s): give its IP with addr=A\n",
                        hf.hosts[h].name, hf.hosts[h].addr, gai_strerror(g));
                goto done;
            }
            ip = ((struct sockaddr_in *) res->ai_addr)->sin_addr;
            freeaddrinfo(res);
            inet_ntop(AF_INET, &ip, hf.hosts[h].addr, sizeof hf.hosts[h].addr);
        }
        if ((ntohl(ip.s_addr) >> 24) == 127)
            loopback = true;
    }

    /* Endpoints: the monitor first, then every node. */
    eps = calloc((size_t) n + 1, sizeof *eps);
    if (!eps) {
        fprintf(stderr, "byznode swarm-file: out of memory\n");
        goto done;
    }
    int w = snprintf(eps[0].text, sizeof eps[0].text, "tcp://%s:%ld", hf.hosts[0].addr, port_base);
    eps[0].who = -1;
    if (w < 0 || (size_t) w >= sizeof eps[0].text) {
        fprintf(stderr, "byznode swarm-file: the monitor's endpoint is too long\n");
        goto done;
    }
    for (uint32_t h = 0; h < hf.n_hosts; h++) {
        /* Ports already used on this address by earlier hosts. */
        long used = 0;
        for (uint32_t g = 0; g < h; g++)
            if (!strcmp(hf.hosts[g].addr, hf.hosts[h].addr))
                used += hf.hosts[g].count;
        for (uint32_t j = 0; j < hf.hosts[h].count; j++) {
            uint32_t id = hf.hosts[h].first + j;
            long port = port_base + 1 + used + j;
            if (port > 65535) {
                fprintf(stderr, "byznode swarm-file: node %u on %s would need port %ld (> 65535): "
                        "lower --port-base or use more hosts\n", id, hf.hosts[h].name, port);
                goto done;
            }
            w = snprintf(eps[id + 1].text, sizeof eps[id + 1].text, "tcp://%s:%ld", hf.hosts[h].addr, port);
            eps[id + 1].who = id;
            if (w < 0 || (size_t) w >= sizeof eps[id + 1].text) {
                fprintf(stderr, "byznode swarm-file: node %u's endpoint is too long\n", id);
                goto done;
            }
        }
    }
    {
        s_endpoint_t *sorted = malloc(((size_t) n + 1) * sizeof *sorted);
        if (!sorted) {
            fprintf(stderr, "byznode swarm-file: out of memory\n");
            goto done;
        }
        memcpy(sorted, eps, ((size_t) n + 1) * sizeof *sorted);
        qsort(sorted, (size_t) n + 1, sizeof *sorted, s_cmp_endpoint);
        for (uint32_t k = 0; k < n; k++)
            if (!strcmp(sorted[k].text, sorted[k + 1].text)) {
                fprintf(stderr, "byznode swarm-file: endpoint %s would be used twice\n", sorted[k].text);
                free(sorted);
                goto done;
            }
        free(sorted);
    }

    /* Keys: check that none exists before making any. */
    if (keydir) {
        node_pub = calloc(n, sizeof *node_pub);
        node_sec = calloc(n, sizeof *node_sec);
        if (!node_pub || !node_sec) {
            fprintf(stderr, "byznode swarm-file: out of memory\n");
            goto done;
        }
        struct stat st;
        for (uint32_t h = 0; h < hf.n_hosts; h++)
            for (long k = (h == 0 ? -1 : 0); k < (long) hf.hosts[h].count; k++) {
                long id = k < 0 ? -1 : (long) hf.hosts[h].first + k;
                if (s_key_path(path, sizeof path, keydir, hf.hosts[h].name, id) != 0) {
                    fprintf(stderr, "byznode swarm-file: key path under %s too long\n", keydir);
                    goto done;
                }
                if (lstat(path, &st) == 0) {
                    fprintf(stderr, "byznode swarm-file: %s exists already: refusing to overwrite a key "
                            "(use a new --curve directory)\n", path);
                    goto done;
                }
            }
        if (bn_keyfile_pair(mon_pub, mon_sec, err, sizeof err) != BN_OK) {
            fprintf(stderr, "byznode swarm-file: %s\n", err);
            goto done;
        }
        for (uint32_t k = 0; k < n; k++)
            if (bn_keyfile_pair(node_pub[k], node_sec[k], err, sizeof err) != BN_OK) {
                fprintf(stderr, "byznode swarm-file: %s\n", err);
                goto done;
            }
        if (bn_keyfile_mkdir(keydir, err, sizeof err) != BN_OK) {
            fprintf(stderr, "byznode swarm-file: %s\n", err);
            goto done;
        }
        for (uint32_t h = 0; h < hf.n_hosts; h++) {
            snprintf(path, sizeof path, "%s/%s", keydir, hf.hosts[h].name);
            if (bn_keyfile_mkdir(path, err, sizeof err) != BN_OK) {
                fprintf(stderr, "byznode swarm-file: %s\n", err);
                goto done;
            }
            if (h == 0) {
                s_key_path(path, sizeof path, keydir, hf.hosts[h].name, -1);
                if (bn_keyfile_write(path, mon_pub, mon_sec, err, sizeof err) != BN_OK) {
                    fprintf(stderr, "byznode swarm-file: %s\n", err);
                    goto done;
                }
            }
            for (uint32_t j = 0; j < hf.hosts[h].count; j++) {
                uint32_t id = hf.hosts[h].first + j;
                s_key_path(path, sizeof path, keydir, hf.hosts[h].name, id);
                if (bn_keyfile_write(path, node_pub[id], node_sec[id], err, sizeof err) != BN_OK) {
                    fprintf(stderr, "byznode swarm-file: %s\n", err);
                    goto done;
                }
            }
        }
        memset(mon_sec, 0, sizeof mon_sec);
        memset(node_sec, 0, (size_t) n * sizeof *node_sec);
    }

    char swarm_name[128];
    if (name)
        snprintf(swarm_name, sizeof swarm_name, "%s", name);
    else
        snprintf(swarm_name, sizeof swarm_name, "swarm-%u-%lx-%lx", n, (unsigned long) time(NULL),
                 (unsigned long) getpid());
    for (char *c = swarm_name; *c; c++)
        if (*c == ' ' || *c == '\t' || *c == '#')
            *c = '-';

    f = fopen(out_path, "w");
    if (!f) {
        fprintf(stderr, "byznode swarm-file: %s: %s\n", out_path, strerror(errno));
        goto done;
    }
    fprintf(f, "# byznode swarm file written by `byznode swarm-file --hosts %s --nodes %u`:\n"
               "# %u nodes on %u host(s)%s\n", hosts_path, n, n, hf.n_hosts,
            keydir ? ", CURVE keys in the --curve directory, one folder per host" : "");
    for (uint32_t h = 0; h < hf.n_hosts; h++) {
        fprintf(f, "# host %s %s ids ", hf.hosts[h].name, hf.hosts[h].addr);
        s_print_ids(f, hf.hosts[h].first, hf.hosts[h].count);
        fprintf(f, "%s\n", h == 0 ? " monitor" : "");
    }
    fprintf(f, "swarm %s\n", swarm_name);
    fprintf(f, "monitor %s%s%s\n", eps[0].text, keydir ? " " : "", keydir ? mon_pub : "");
    for (int k = 0; k < n_opts; k++)
        fprintf(f, "option %s %s\n", opt_names[k], opt_values[k]);
    for (uint32_t id = 0; id < n; id++)
        fprintf(f, "node %u %s%s%s\n", id, eps[id + 1].text, keydir ? " " : "", keydir ? node_pub[id] : "");
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "byznode swarm-file: %s: write failed\n", out_path);
        goto done;
    }
    f = NULL;

    bn_swarm_t check;
    if (bn_swarm_load(&check, out_path, err, sizeof err) != BN_OK) {
        fprintf(stderr, "byznode swarm-file: the written file does not load: %s\n", err);
        goto done;
    }
    bn_swarm_free(&check);
    if (loopback && hf.n_hosts > 1)
        fprintf(stderr, "swarm-file: warning: a host's address is a loopback address (127.x): other hosts "
                "cannot reach its nodes; give addr=IP in the hostfile\n");
    fprintf(stderr, "swarm-file: %u nodes on %u host(s) -> %s%s%s\n", n, hf.n_hosts, out_path,
            keydir ? ", keys in " : "", keydir ? keydir : "");
    rc = 0;
done:
    if (f)
        fclose(f);
    free(eps);
    free(node_pub);
    free(node_sec);
    bn_hostfile_free(&hf);
    return rc;
}
