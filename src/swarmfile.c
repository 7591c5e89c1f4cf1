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

/* ------------------------------------------------------------ the lines */

/* A swarm file being read: the swarm filled in so far and its node lines in
 * file order (nodes[] becomes s->nodes, by id, once every line is read). */
typedef struct {
    const char *path;
    bn_swarm_t *s;
    uint32_t    lineno;                    /* the line being read, 1-based   */
    uint32_t    swarm_line, monitor_line;  /* where each was seen; 0 = not yet */
    s_node_t   *nodes;                     /* nn of ncap (owned)             */
    size_t      nn, ncap;
    uint32_t    max_id;                    /* largest node id seen           */
} s_parse_t;

/* "swarm <name>": once, at most 127 bytes of printable UTF-8. */
static int s_swarm_line(s_parse_t *p, char **tok, int nt, char *err, size_t errlen)
{
    bn_swarm_t *s = p->s;
    if (nt != 2)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: expected \"swarm <name>\" (%d fields)",
                       p->path, p->lineno, nt);
    if (p->swarm_line)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: second swarm line '%s' (first on line %u)",
                       p->path, p->lineno, tok[1], p->swarm_line);
    if (strlen(tok[1]) >= sizeof s->name)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: swarm name '%.40s...' longer than %zu characters",
                       p->path, p->lineno, tok[1], sizeof s->name - 1);
    if (!s_printable_utf8(tok[1]))
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: swarm name is not printable UTF-8",
                       p->path, p->lineno);
    strcpy(s->name, tok[1]);
    p->swarm_line = p->lineno;
    return BN_OK;
}

/* The endpoint and optional key fields of a monitor or node line. */
static int s_peer_fields(const s_parse_t *p, const char *endpoint, const char *key,
                         char *err, size_t errlen)
{
    const char *why = "";
    if (!s_endpoint_ok(endpoint, &why))
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: %s (got '%.60s')", p->path, p->lineno, why, endpoint);
    if (key && !s_is_key(key))
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s:%u: public key must be 40 Z85 characters (got '%.60s')", p->path, p->lineno, key);
    return BN_OK;
}

/* "monitor <endpoint> [<public-key>]": at most once. */
static int s_monitor_line(s_parse_t *p, char **tok, int nt, char *err, size_t errlen)
{
    bn_swarm_t *s = p->s;
    if (nt < 2 || nt > 3)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s:%u: expected \"monitor <endpoint> [<public-key>]\" (%d fields)",
                       p->path, p->lineno, nt);
    if (p->monitor_line)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: second monitor line (first on line %u)",
                       p->path, p->lineno, p->monitor_line);
    int rc = s_peer_fields(p, tok[1], nt == 3 ? tok[2] : NULL, err, errlen);
    if (rc != BN_OK)
        return rc;
    strcpy(s->monitor.endpoint, tok[1]);
    if (nt == 3)
        strcpy(s->monitor.public_key, tok[2]);
    p->monitor_line = p->lineno;
    return BN_OK;
}

/* "option <name> <value>": a new name, a value that fits, S_MAX_OPTIONS in all. */
static int s_option_line(s_parse_t *p, char **tok, int nt, char *err, size_t errlen)
{
    bn_swarm_t *s = p->s;
    if (nt != 3)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: expected \"option <name> <value>\" (%d fields)",
                       p->path, p->lineno, nt);
    if (!s_option_name_ok(tok[1]))
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s:%u: bad option name '%.60s' (lower-case letters, digits, '-', '_'; "
                       "at most 63)", p->path, p->lineno, tok[1]);
    if (strlen(tok[2]) >= sizeof s->option_values[0])
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: value of option %s longer than %zu characters",
                       p->path, p->lineno, tok[1], sizeof s->option_values[0] - 1);
    for (uint32_t i = 0; i < s->n_options; i++)
        if (strcmp(s->option_names[i], tok[1]) == 0)
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: option '%s' given twice", p->path, p->lineno,
                           tok[1]);
    if (s->n_options == S_MAX_OPTIONS)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: more than %u options", p->path, p->lineno,
                       S_MAX_OPTIONS);
    strcpy(s->option_names[s->n_options], tok[1]);
    strcpy(s->option_values[s->n_options], tok[2]);
    s->n_options++;
    return BN_OK;
}

/* "node <id> <endpoint> [<public-key>]": appended to p->nodes; ids and
 * endpoints across lines are checked once the file is read. */
static int s_node_line(s_parse_t *p, char **tok, int nt, char *err, size_t errlen)
{
    if (nt < 3 || nt > 4)
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s:%u: expected \"node <id> <endpoint> [<public-key>]\" (%d fields)",
                       p->path, p->lineno, nt);
    uint32_t id;
    if (!s_parse_id(tok[1], &id))
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: bad node id '%.40s' (accepted: 0..%u)",
                       p->path, p->lineno, tok[1], S_MAX_NODES - 1);
    int rc = s_peer_fields(p, tok[2], nt == 4 ? tok[3] : NULL, err, errlen);
    if (rc != BN_OK)
        return rc;
    if (p->nn == p->ncap && bn_grow(&p->nodes, &p->ncap, sizeof *p->nodes, 64) != BN_OK)
        return bn_fail(err, errlen, BN_ENOMEM, "%s:%u: out of memory", p->path, p->lineno);
    s_node_t *x = &p->nodes[p->nn++];
    memset(x, 0, sizeof *x);
    x->id = id;
    x->line = p->lineno;
    strcpy(x->peer.endpoint, tok[2]);
    s_socket_key(tok[2], x->key, sizeof x->key);
    if (nt == 4)
        strcpy(x->peer.public_key, tok[3]);
    if (id > p->max_id)
        p->max_id = id;
    return BN_OK;
}

typedef int (*s_line_fn)(s_parse_t *p, char **tok, int nt, char *err, size_t errlen);

/* The keywords a line may start with. */
static const struct {
    const char *keyword;
    s_line_fn   parse;
} s_keywords[] = {
    { "swarm",   s_swarm_line   },
    { "monitor", s_monitor_line },
    { "option",  s_option_line  },
    { "node",    s_node_line    },
};

/* One line (edited in place): tokens, then its keyword's parser.  A bn_line_fn. */
static int s_line(void *ctx, char *line, unsigned lineno, char *err, size_t errlen)
{
    s_parse_t *p = ctx;
    p->lineno = lineno;
    char *tok[S_MAX_TOKENS];
    int nt = s_tokenise(line, tok);
    if (nt < 0)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: too many fields", p->path, p->lineno);
    if (nt == 0)
        return BN_OK;
    for (size_t i = 0; i < BN_ARRAY_LEN(s_keywords); i++)
        if (strcmp(tok[0], s_keywords[i].keyword) == 0)
            return s_keywords[i].parse(p, tok, nt, err, errlen);
    return bn_fail(err, errlen, BN_EFORMAT,
                   "%s:%u: unknown keyword '%.40s' (expected swarm, monitor, option or node)",
                   p->path, p->lineno, tok[0]);
}

/* Every line of file (a FILE *) into ctx (an s_parse_t; a longer line than
 * S_MAX_LINE is refused before it is stored); then a swarm line and a node
 * line are due. */
static int s_read(void *ctx, void *file, char *err, size_t errlen)
{
    s_parse_t *p = ctx;
    int rc = bn_read_lines(file, p->path, S_MAX_LINE, s_line, p, err, errlen);
    if (rc != BN_OK)
        return rc;
    if (!p->swarm_line)
        return bn_fail(err, errlen, BN_EFORMAT, "%s: no \"swarm <name>\" line", p->path);
    if (p->nn == 0)
        return bn_fail(err, errlen, BN_EFORMAT, "%s: no node lines", p->path);
    return BN_OK;
}

/* ------------------------------------------------------ the whole file */

/* Ids 0..n-1 each exactly once; then s->nodes[id] = that node's peer. */
static int s_nodes_by_id(s_parse_t *p, char *err, size_t errlen)
{
    /* seen[id] = line of its first occurrence */
    uint32_t *seen = calloc((size_t) p->max_id + 1, sizeof *seen);
    if (!seen)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", p->path);
    int rc = BN_OK;
    for (size_t i = 0; i < p->nn && rc == BN_OK; i++) {
        const s_node_t *x = &p->nodes[i];
        if (seen[x->id])
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: node id %u given twice (first on line %u)",
                         p->path, x->line, x->id, seen[x->id]);
        else
            seen[x->id] = x->line;
    }
    for (uint32_t id = 0; id <= p->max_id && rc == BN_OK; id++)
        if (!seen[id])
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s: node id %u missing (ids must be 0..%u; "
                         "largest is %u on line %u)", p->path, id, (uint32_t) p->nn - 1, p->max_id,
                         seen[p->max_id]);
    free(seen);
    if (rc != BN_OK)
        return rc;
    bn_swarm_t *s = p->s;
    s->n = (uint32_t) p->nn;
    s->nodes = calloc(p->nn, sizeof *s->nodes);
    if (!s->nodes)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", p->path);
    for (size_t i = 0; i < p->nn; i++)
        s->nodes[p->nodes[i].id] = p->nodes[i].peer;
    return BN_OK;
}

/* All or none of the nodes have keys (as the first node line has or not). */
static int s_check_keys(const s_parse_t *p, char *err, size_t errlen)
{
    const s_node_t *first = &p->nodes[0];
    bool first_key = first->peer.public_key[0] != '\0';
    for (size_t i = 1; i < p->nn; i++) {
        const s_node_t *x = &p->nodes[i];
        if ((x->peer.public_key[0] != '\0') != first_key)
            return bn_fail(err, errlen, BN_EFORMAT,
                           "%s:%u: node %u %s a public key but node %u (line %u) %s: all or none",
                           p->path, x->line, x->id, first_key ? "lacks" : "has",
                           first->id, first->line, first_key ? "has one" : "has none");
    }
    return BN_OK;
}

/* No two nodes name one socket: sort by (socket, line) and compare
 * neighbours, so the error names the later line. */
static int s_check_endpoints(const s_parse_t *p, char *err, size_t errlen)
{
    s_node_t **by_ep = malloc(p->nn * sizeof *by_ep);
    if (!by_ep)
        return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", p->path);
    for (size_t i = 0; i < p->nn; i++)
        by_ep[i] = &p->nodes[i];
    qsort(by_ep, p->nn, sizeof *by_ep, s_endpoint_cmp);
    int rc = BN_OK;
    for (size_t i = 1; i < p->nn && rc == BN_OK; i++) {
        const s_node_t *a = by_ep[i - 1], *b = by_ep[i];
        if (strcmp(b->key, a->key) != 0)
            continue;
        if (strcmp(b->peer.endpoint, a->peer.endpoint) == 0)
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: endpoint '%s' already used on line %u",
                         p->path, b->line, b->peer.endpoint, a->line);
        else
            rc = bn_fail(err, errlen, BN_EFORMAT, "%s:%u: endpoint '%s' is the socket of '%s' "
                         "on line %u", p->path, b->line, b->peer.endpoint, a->peer.endpoint, a->line);
    }
    free(by_ep);
    return rc;
}

/* No node names the monitor's socket. */
static int s_check_monitor(const s_parse_t *p, char *err, size_t errlen)
{
    if (!p->monitor_line)
        return BN_OK;
    const bn_swarm_peer_t *m = &p->s->monitor;
    char mkey[S_KEY_MAX];
    s_socket_key(m->endpoint, mkey, sizeof mkey);
    for (size_t i = 0; i < p->nn; i++) {
        const s_node_t *x = &p->nodes[i];
        if (strcmp(x->key, mkey) == 0)
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: endpoint '%s' is the socket of the "
                           "monitor '%s' on line %u", p->path, x->line, x->peer.endpoint,
                           m->endpoint, p->monitor_line);
    }
    return BN_OK;
}

int bn_swarm_load(bn_swarm_t *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s_parse_t p = { .path = path, .s = s };
    int rc = BN_OK;
    s->option_names = calloc(S_MAX_OPTIONS, sizeof *s->option_names);
    s->option_values = calloc(S_MAX_OPTIONS, sizeof *s->option_values);
    if (!s->option_names || !s->option_values)
        rc = bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", path);
    if (rc == BN_OK)
        rc = bn_read_file(path, "cannot open: ", s_read, &p, err, errlen);
    if (rc == BN_OK)
        rc = s_nodes_by_id(&p, err, errlen);
    if (rc == BN_OK)
        rc = s_check_keys(&p, err, errlen);
    if (rc == BN_OK)
        rc = s_check_endpoints(&p, err, errlen);
    if (rc == BN_OK)
        rc = s_check_monitor(&p, err, errlen);
    if (rc == BN_OK) {
        s->curve = p.nodes[0].peer.public_key[0] != '\0';
        s->swarm_id = s_hash_name(s->name);
    }
    free(p.nodes);
    if (rc != BN_OK)
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
