/*  swarmfile.c -- strict parser of the shared swarm file; see swarmfile.h.
 *
 *  The file is untrusted text: every line is tokenised on blanks and checked,
 *  and the first fault is reported as "PATH:LINE: what (got 'VALUE')".  After
 *  a successful load: exactly one `swarm` line was seen; node ids are 0..n-1
 *  each exactly once; no two nodes share an endpoint; either every node has
 *  a key (curve = true) or none has.
 *
 *  Comments: '#' starts a comment when it begins a token, except in a key
 *  position where the token is a valid 40-character Z85 key (the Z85
 *  alphabet contains '#', so a key may start with it).
 *
 *  swarm_id = bn_mix64(FNV-1a-64(name)).
 */
#include "swarmfile.h"
#include "rng.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_TOKENS   8
#define S_MAX_LINE     4096
#define S_MAX_NODES    100000u
#define S_MAX_OPTIONS  256u

static const char s_z85[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/* Longest canonical socket key: "tcp://" + host + ":" + port. */
#define S_KEY_MAX (BN_ENDPOINT_MAX + 16)

typedef struct {
    uint32_t id;
    uint32_t line;
    bn_swarm_peer_t peer;
    char key[S_KEY_MAX];      /* the socket the endpoint names (s_socket_key) */
} s_node_t;

static bool s_is_key(const char *tok)
{
    if (strlen(tok) != BN_KEY_Z85_LEN)
        return false;
    for (const char *c = tok; *c; c++)
        if (!strchr(s_z85, *c))
            return false;
    return true;
}

/* Checks tcp://host:port (port 1..65535, or * for a bind) or ipc://path. */
static bool s_endpoint_ok(const char *ep, const char **why)
{
    size_t len = strlen(ep);
    if (len >= BN_ENDPOINT_MAX) {
        *why = "endpoint too long";
        return false;
    }
    if (strncmp(ep, "ipc://", 6) == 0) {
        if (ep[6] == '\0') {
            *why = "ipc endpoint without a path";
            return false;
        }
        return true;
    }
    if (strncmp(ep, "tcp://", 6) != 0) {
        *why = "endpoint must start with tcp:// or ipc://";
        return false;
    }
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host) {
        *why = "tcp endpoint must be tcp://host:port";
        return false;
    }
    const char *port = colon + 1;
    if (*port == '\0' || strlen(port) > 5) {
        *why = "tcp port must be 1..65535";
        return false;
    }
    long v = 0;
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9') {
            *why = "tcp port must be 1..65535";
            return false;
        }
        v = v * 10 + (*c - '0');
    }
    if (v < 1 || v > 65535) {
        *why = "tcp port must be 1..65535";
        return false;
    }
    return true;
}

static bool s_option_name_ok(const char *name)
{
    if (strlen(name) >= 64 || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return false;
    return true;
}

/* The socket an endpoint (already checked by s_endpoint_ok) names, as a
 * canonical text, so that two spellings of one socket compare equal:
 * tcp hosts are lower-cased, "localhost" is 127.0.0.1, numeric IPv4 and IPv6
 * addresses are written as inet_ntop writes them, ports lose leading zeros.
 * Other host names are compared as written (no DNS at load time); ipc paths
 * as written. */
static void s_socket_key(const char *ep, char *key, size_t cap)
{
    if (strncmp(ep, "tcp://", 6) != 0) {
        snprintf(key, cap, "%s", ep);
        return;
    }
    const char *host = ep + 6, *colon = strrchr(host, ':');
    char h[BN_ENDPOINT_MAX];
    size_t hl = (size_t) (colon - host);
    if (hl >= sizeof h)
        hl = sizeof h - 1;
    for (size_t i = 0; i < hl; i++)
        h[i] = (char) tolower((unsigned char) host[i]);
    h[hl] = '\0';
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {   /* [v6] */
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = '\0';
    }
    if (strcmp(h, "localhost") == 0 || strcmp(h, "localhost.") == 0)
        snprintf(h, sizeof h, "127.0.0.1");
    unsigned char addr[16];
    char canon[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, h, addr) == 1 && inet_ntop(AF_INET, addr, canon, sizeof canon))
        snprintf(h, sizeof h, "%s", canon);
    else if (inet_pton(AF_INET6, h, addr) == 1 && inet_ntop(AF_INET6, addr, canon, sizeof canon))
        snprintf(h, sizeof h, "[%s]", canon);
    long port = strtol(colon + 1, NULL, 10);    /* digits only: s_endpoint_ok */
    snprintf(key, cap, "tcp://%s:%ld", h, port);
}

/* Valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF) without
 * control characters. */
static bool s_printable_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    while (*p) {
        unsigned c = *p;
        size_t n;
        uint32_t cp;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
        else
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

static int s_endpoint_cmp(const void *a, const void *b)
{
    const s_node_t *x = *(const s_node_t *const *) a, *y = *(const s_node_t *const *) b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static uint64_t s_hash_name(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *c = (const unsigned char *) name; *c; c++) {
        h ^= *c;
        h *= 0x100000001b3ULL;
    }
    return bn_mix64(h);
}

/* Splits line into blank-separated tokens (in place) into tok[]; returns the
 * count, or -1 for more than S_MAX_TOKENS.  A token starting with '#' ends
 * the line unless it is in the key position of a node (index 3) or monitor
 * (index 2) line and is a valid key. */
static int s_tokenise(char *line, char **tok)
{
    int nt = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p == '\0')
            break;
        char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            p++;
        if (*p)
            *p++ = '\0';
        if (start[0] == '#') {
            int key_at = -1;
            if (nt >= 1 && strcmp(tok[0], "node") == 0)
                key_at = 3;
            else if (nt >= 1 && strcmp(tok[0], "monitor") == 0)
                key_at = 2;
            if (!(nt == key_at && s_is_key(start)))
                break;
        }
        if (nt == S_MAX_TOKENS)
            return -1;
        tok[nt++] = start;
    }
    return nt;
}

/* Parses a decimal id < S_MAX_NODES. */
static bool s_parse_id(const char *s, uint32_t *out)
{
    if (!*s || strlen(s) > 9)
        return false;
    uint32_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (uint32_t) (*c - '0');
    }
    if (v >= S_MAX_NODES)
        return false;
    *out = v;
    return true;
}

int bn_swarm_load(bn_swarm_t *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "r");
    if (!f)
        return bn_fail(err, errlen, BN_EIO, "%s: cannot open: %s", path, strerror(errno));

    char *line = malloc(S_MAX_LINE + 1);
    size_t nn = 0, ncap = 0;
    s_node_t *nodes = NULL;
    uint32_t *seen = NULL;
    s_node_t **by_ep = NULL;
    uint32_t lineno = 0, swarm_line = 0, monitor_line = 0, max_id = 0;
    int rc = BN_OK;
    long len;
    char *tok[S_MAX_TOKENS];
    const char *why = "";

    s->option_names = calloc(S_MAX_OPTIONS, sizeof *s->option_names);
    s->option_values = calloc(S_MAX_OPTIONS, sizeof *s->option_values);
    if (!s->option_names || !s->option_values || !line) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
        goto fail;
    }

    while ((len = bn_read_line(f, line, S_MAX_LINE + 1)) != 0) {
        lineno++;
        if (len < 0) {
            rc = bn_read_line_fail(len, path, lineno, S_MAX_LINE, err, errlen);
            goto fail;
        }
        int nt = s_tokenise(line, tok);
        if (nt < 0) {
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: too many fields", path, lineno);
            goto fail;
        }
        if (nt == 0)
            continue;
        const char *kw = tok[0];
        if (strcmp(kw, "swarm") == 0) {
            if (nt != 2) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: expected \"swarm <name>\" (%d fields)",
                             path, lineno, nt);
                goto fail;
            }
            if (swarm_line) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: second swarm line '%s' (first on line %u)",
                             path, lineno, tok[1], swarm_line);
                goto fail;
            }
            if (strlen(tok[1]) >= sizeof s->name) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: swarm name '%.40s...' longer than %zu characters",
                             path, lineno, tok[1], sizeof s->name - 1);
                goto fail;
            }
            if (!s_printable_utf8(tok[1])) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: swarm name is not printable UTF-8",
                             path, lineno);
                goto fail;
            }
            strcpy(s->name, tok[1]);
            swarm_line = lineno;
        } else if (strcmp(kw, "monitor") == 0) {
            if (nt < 2 || nt > 3) {
                rc = bn_fail(err, errlen, BN_EFORMAT,
                             "%s:%u: expected \"monitor <endpoint> [<public-key>]\" (%d fields)",
                             path, lineno, nt);
                goto fail;
            }
            if (monitor_line) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: second monitor line (first on line %u)",
                             path, lineno, monitor_line);
                goto fail;
            }
            if (!s_endpoint_ok(tok[1], &why)) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: %s (got '%.60s')", path, lineno, why, tok[1]);
                goto fail;
            }
            if (nt == 3 && !s_is_key(tok[2])) {
                rc = bn_fail(err, errlen, BN_EFORMAT,
                             "%s:%u: public key must be 40 Z85 characters (got '%.60s')", path, lineno, tok[2]);
                goto fail;
            }
            strcpy(s->monitor.endpoint, tok[1]);
            if (nt == 3)
                strcpy(s->monitor.public_key, tok[2]);
            monitor_line = lineno;
        } else if (strcmp(kw, "option") == 0) {
            if (nt != 3) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: expected \"option <name> <value>\" (%d fields)",
                             path, lineno, nt);
                goto fail;
            }
            if (!s_option_name_ok(tok[1])) {
                rc = bn_fail(err, errlen, BN_EFORMAT,
                             "%s:%u: bad option name '%.60s' (lower-case letters, digits, '-', '_'; "
                             "at most 63)", path, lineno, tok[1]);
                goto fail;
            }
            if (strlen(tok[2]) >= sizeof s->option_values[0]) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: value of option %s longer than %zu characters",
                             path, lineno, tok[1], sizeof s->option_values[0] - 1);
                goto fail;
            }
            for (uint32_t i = 0; i < s->n_options; i++) {
                if (strcmp(s->option_names[i], tok[1]) == 0) {
                    rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: option '%s' given twice", path, lineno,
                                 tok[1]);
                    goto fail;
                }
            }
            if (s->n_options == S_MAX_OPTIONS) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: more than %u options", path, lineno,
                             S_MAX_OPTIONS);
                goto fail;
            }
            strcpy(s->option_names[s->n_options], tok[1]);
            strcpy(s->option_values[s->n_options], tok[2]);
            s->n_options++;
        } else if (strcmp(kw, "node") == 0) {
            if (nt < 3 || nt > 4) {
                rc = bn_fail(err, errlen, BN_EFORMAT,
                             "%s:%u: expected \"node <id> <endpoint> [<public-key>]\" (%d fields)",
                             path, lineno, nt);
                goto fail;
            }
            uint32_t id;
            if (!s_parse_id(tok[1], &id)) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: bad node id '%.40s' (accepted: 0..%u)",
                             path, lineno, tok[1], S_MAX_NODES - 1);
                goto fail;
            }
            if (!s_endpoint_ok(tok[2], &why)) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: %s (got '%.60s')", path, lineno, why, tok[2]);
                goto fail;
            }
            if (nt == 4 && !s_is_key(tok[3])) {
                rc = bn_fail(err, errlen, BN_EFORMAT,
                             "%s:%u: public key must be 40 Z85 characters (got '%.60s')", path, lineno, tok[3]);
                goto fail;
            }
            if (nn == ncap) {
                size_t nc = ncap ? 2 * ncap : 64;
                s_node_t *n2 = realloc(nodes, nc * sizeof *n2);
                if (!n2) {
                    rc = bn_fail(err, errlen, BN_ENOMEM, "%s:%u: out of memory", path, lineno);
                    goto fail;
                }
                nodes = n2;
                ncap = nc;
            }
            memset(&nodes[nn], 0, sizeof nodes[nn]);
            nodes[nn].id = id;
            nodes[nn].line = lineno;
            strcpy(nodes[nn].peer.endpoint, tok[2]);
            s_socket_key(tok[2], nodes[nn].key, sizeof nodes[nn].key);
            if (nt == 4)
                strcpy(nodes[nn].peer.public_key, tok[3]);
            nn++;
            if (id > max_id)
                max_id = id;
        } else {
            rc = bn_fail(err, errlen, BN_EFORMAT,
                         "%s:%u: unknown keyword '%.40s' (expected swarm, monitor, option or node)",
                         path, lineno, kw);
            goto fail;
        }
    }
    if (ferror(f)) {
        rc = bn_fail(err, errlen, BN_EIO, "%s: read error", path);
        goto fail;
    }
    if (!swarm_line) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: no \"swarm <name>\" line", path);
        goto fail;
    }
    if (nn == 0) {
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: no node lines", path);
        goto fail;
    }

    /* ids 0..n-1 each exactly once; seen[id] = line of its first occurrence */
    seen = calloc((size_t) max_id + 1, sizeof *seen);
    if (!seen) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < nn; i++) {
        if (seen[nodes[i].id]) {
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: node id %u given twice (first on line %u)",
                         path, nodes[i].line, nodes[i].id, seen[nodes[i].id]);
            goto fail;
        }
        seen[nodes[i].id] = nodes[i].line;
    }
    for (uint32_t id = 0; id <= max_id; id++) {
        if (!seen[id]) {
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s: node id %u missing (ids must be 0..%u; "
                         "largest is %u on line %u)", path, id, (uint32_t) nn - 1, max_id, seen[max_id]);
            goto fail;
        }
    }
    s->n = (uint32_t) nn;
    s->nodes = calloc(nn, sizeof *s->nodes);
    if (!s->nodes) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < nn; i++)
        s->nodes[nodes[i].id] = nodes[i].peer;

    /* all or none of the nodes have keys; endpoints distinct */
    bool first_key = nodes[0].peer.public_key[0] != '\0';
    for (size_t i = 1; i < nn; i++) {
        if ((nodes[i].peer.public_key[0] != '\0') != first_key) {
            rc = bn_fail(err, errlen, BN_EFORMAT,
                         "%s:%u: node %u %s a public key but node %u (line %u) %s: all or none",
                         path, nodes[i].line, nodes[i].id, first_key ? "lacks" : "has",
                         nodes[0].id, nodes[0].line, first_key ? "has one" : "has none");
            goto fail;
        }
    }
    /* Distinct endpoints: sort by (endpoint, line) and compare neighbours. */
    by_ep = malloc(nn * sizeof *by_ep);
    if (!by_ep) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < nn; i++)
        by_ep[i] = &nodes[i];
    qsort(by_ep, nn, sizeof *by_ep, s_endpoint_cmp);
    for (size_t i = 1; i < nn; i++) {
        if (strcmp(by_ep[i]->key, by_ep[i - 1]->key) == 0) {
            if (strcmp(by_ep[i]->peer.endpoint, by_ep[i - 1]->peer.endpoint) == 0)
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: endpoint '%s' already used on line %u",
                             path, by_ep[i]->line, by_ep[i]->peer.endpoint, by_ep[i - 1]->line);
            else
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: endpoint '%s' is the socket of '%s' "
                             "on line %u", path, by_ep[i]->line, by_ep[i]->peer.endpoint,
                             by_ep[i - 1]->peer.endpoint, by_ep[i - 1]->line);
            goto fail;
        }
    }
    if (monitor_line) {
        char mkey[S_KEY_MAX];
        s_socket_key(s->monitor.endpoint, mkey, sizeof mkey);
        for (size_t i = 0; i < nn; i++) {
            if (strcmp(nodes[i].key, mkey) == 0) {
                rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: endpoint '%s' is the socket of the "
                             "monitor '%s' on line %u", path, nodes[i].line, nodes[i].peer.endpoint,
                             s->monitor.endpoint, monitor_line);
                goto fail;
            }
        }
    }
    s->curve = first_key;
    s->swarm_id = s_hash_name(s->name);
    free(by_ep);
    free(seen);
    free(nodes);
    free(line);
    fclose(f);
    return BN_OK;

fail:
    free(by_ep);
    free(seen);
    free(nodes);
    free(line);
    fclose(f);
    bn_swarm_free(s);
    return rc;
}

void bn_swarm_free(bn_swarm_t *s)
{
    if (!s)
        return;
    free(s->nodes);
    free(s->option_names);
    free(s->option_values);
    memset(s, 0, sizeof *s);
}
