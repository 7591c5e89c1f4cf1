/*  hostfile.c -- hostfile parsing, node placement and node id lists.
 *
 *  Everything here reads text a user wrote: every field is bounded and
 *  checked, and an error names the file, the line and the field.
 */
#include "hostfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_HOSTS_MAX 100000u

/* Per-host bookkeeping while reading: explicit slot counts add up, lines
 * without a count are remembered to decide what they mean at the end. */
typedef struct {
    uint64_t explicit_slots;
    uint32_t bare_lines;
    uint32_t lines;
} s_tally_t;

/* Parses a decimal count 1..1000000 from the whole of text. */
static bool s_parse_count(const char *text, uint32_t *out)
{
    if (!*text)
        return false;
    for (const char *c = text; *c; c++)
        if (!isdigit((unsigned char) *c))
            return false;
    errno = 0;
    unsigned long v = strtoul(text, NULL, 10);
    if (errno || v < 1 || v > 1000000ul)
        return false;
    *out = (uint32_t) v;
    return true;
}

/* A host name or address: printable, no blanks, no '/' or '#'. */
static bool s_valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= BN_HOST_NAME_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!isgraph((unsigned char) *c) || *c == '/' || *c == '#')
            return false;
    return true;
}

void bn_hostfile_free(bn_hostfile_t *hf)
{
    if (!hf)
        return;
    free(hf->hosts);
    hf->hosts = NULL;
    hf->n_hosts = 0;
}

/* One line of a hostfile, parsed: "host[:K] [K | slots=K | max_slots=K | addr=A]...". */
typedef struct {
    char     name[BN_HOST_NAME_MAX];
    char     addr[BN_HOST_NAME_MAX];   /* "" when the line gives none */
    uint32_t slots;
    bool     have_slots;
} s_line_t;

/* A hostfile being read: where we are, and the hosts' tallies so far. */
typedef struct {
    const char    *path;
    unsigned       lineno;
    bn_hostfile_t *hf;
    s_tally_t     *tally;    /* one per host, cap entries (owned) */
    uint32_t       cap;
} s_reader_t;

/* The line's first token: the host name, with an MPICH ":K" slot count. */
static int s_line_host(const s_reader_t *r, char *tok, s_line_t *ln, char *err, size_t errlen)
{
    char *colon = strchr(tok, ':');
    if (colon) {
        *colon = '\0';
        if (!s_parse_count(colon + 1, &ln->slots))
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%s': the slot count after ':' must be 1..1000000",
                           r->path, r->lineno, colon + 1);
        ln->have_slots = true;
    }
    if (!s_valid_name(tok))
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%.64s' is not a host name", r->path, r->lineno, tok);
    snprintf(ln->name, sizeof ln->name, "%s", tok);
    return BN_OK;
}

/* A token after the host name: K, slots=K, max_slots=K (ignored) or addr=A. */
static int s_line_field(const s_reader_t *r, const char *tok, s_line_t *ln, char *err, size_t errlen)
{
    uint32_t v;
    if (!strncmp(tok, "slots=", 6) || s_parse_count(tok, &v)) {
        const char *num = strncmp(tok, "slots=", 6) ? tok : tok + 6;
        if (ln->have_slots || !s_parse_count(num, &ln->slots))
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%s': one slot count 1..1000000 per line",
                           r->path, r->lineno, tok);
        ln->have_slots = true;
    } else if (!strncmp(tok, "max_slots=", 10)) {
        if (!s_parse_count(tok + 10, &v))
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%s': max_slots must be 1..1000000",
                           r->path, r->lineno, tok);
    } else if (!strncmp(tok, "addr=", 5)) {
        if (!s_valid_name(tok + 5))
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: '%.64s' is not an address", r->path, r->lineno, tok);
        snprintf(ln->addr, sizeof ln->addr, "%s", tok + 5);
    } else {
        return bn_fail(err, errlen, BN_EFORMAT,
                       "%s:%u: '%.64s': expected a slot count, slots=K, max_slots=K or addr=A",
                       r->path, r->lineno, tok);
    }
    return BN_OK;
}

/* Parses line (edited in place) into *ln; *blank when it holds only a comment
 * or white space. */
static int s_line_parse(const s_reader_t *r, char *line, s_line_t *ln, bool *blank,
                        char *err, size_t errlen)
{
    memset(ln, 0, sizeof *ln);
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
    *blank = tok == NULL;
    if (!tok)
        return BN_OK;
    int rc = s_line_host(r, tok, ln, err, errlen);
    while (rc == BN_OK && (tok = strtok_r(NULL, " \t\r\n", &save)))
        rc = s_line_field(r, tok, ln, err, errlen);
    return rc;
}

/* Appends host ln->name (address ln->addr, else its name) with an empty tally. */
static int s_host_add(s_reader_t *r, const s_line_t *ln, char *err, size_t errlen)
{
    bn_hostfile_t *hf = r->hf;
    if (hf->n_hosts == BN_HOSTS_MAX)
        return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: more than %u hosts", r->path, r->lineno, BN_HOSTS_MAX);
    if (hf->n_hosts == r->cap) {
        uint32_t ncap = r->cap ? 2 * r->cap : 16;
        bn_host_t *nh = realloc(hf->hosts, ncap * sizeof *nh);
        s_tally_t *nt = nh ? realloc(r->tally, ncap * sizeof *nt) : NULL;
        if (nh)
            hf->hosts = nh;
        if (!nh || !nt)
            return bn_fail(err, errlen, BN_ENOMEM, "%s: out of memory", r->path);
        r->tally = nt;
        r->cap = ncap;
    }
    bn_host_t *x = &hf->hosts[hf->n_hosts];
    memset(x, 0, sizeof *x);
    memset(&r->tally[hf->n_hosts], 0, sizeof r->tally[hf->n_hosts]);
    snprintf(x->name, sizeof x->name, "%s", ln->name);
    snprintf(x->addr, sizeof x->addr, "%s", ln->addr[0] ? ln->addr : ln->name);
    hf->n_hosts++;
    return BN_OK;
}

/* Adds a parsed line to its host (a new one, or one named before: an address
 * may be given once) and to that host's tally. */
static int s_host_record(s_reader_t *r, const s_line_t *ln, char *err, size_t errlen)
{
    bn_hostfile_t *hf = r->hf;
    uint32_t h = 0;
    while (h < hf->n_hosts && strcmp(hf->hosts[h].name, ln->name) != 0)
        h++;
    if (h == hf->n_hosts) {
        int rc = s_host_add(r, ln, err, errlen);
        if (rc != BN_OK)
            return rc;
    } else if (ln->addr[0] && strcmp(ln->addr, hf->hosts[h].addr) != 0) {
        if (strcmp(hf->hosts[h].addr, hf->hosts[h].name) != 0)
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: host %s was given the address %s already",
                           r->path, r->lineno, ln->name, hf->hosts[h].addr);
        snprintf(hf->hosts[h].addr, sizeof hf->hosts[h].addr, "%s", ln->addr);
    }
    r->tally[h].lines++;
    if (ln->have_slots)
        r->tally[h].explicit_slots += ln->slots;
    else
        r->tally[h].bare_lines++;
    return BN_OK;
}

/* Every line of file (a FILE *) into the hosts and tallies of ctx (an
 * s_reader_t). */
static int s_hosts_read(void *ctx, void *file, char *err, size_t errlen)
{
    s_reader_t *r = ctx;
    FILE *f = file;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        r->lineno++;
        if (!strchr(line, '\n') && !feof(f))
            return bn_fail(err, errlen, BN_EFORMAT, "%s:%u: line too long", r->path, r->lineno);
        s_line_t ln;
        bool blank;
        int rc = s_line_parse(r, line, &ln, &blank, err, errlen);
        if (rc == BN_OK && !blank)
            rc = s_host_record(r, &ln, err, errlen);
        if (rc != BN_OK)
            return rc;
    }
    if (ferror(f))
        return bn_fail(err, errlen, BN_EIO, "%s: read error", r->path);
    return BN_OK;
}

/* Each host's slots from its tally.  One line without a count: no limit;
 * otherwise every line counts (a bare line is one slot). */
static void s_hosts_slots(s_reader_t *r)
{
    for (uint32_t h = 0; h < r->hf->n_hosts; h++) {
        const s_tally_t *t = &r->tally[h];
        uint64_t s = (t->lines == 1 && t->bare_lines == 1) ? 0 : t->explicit_slots + t->bare_lines;
        r->hf->hosts[h].slots = s > 1000000u ? 1000000u : (uint32_t) s;
    }
}

int bn_hostfile_load(bn_hostfile_t *hf, const char *path, char *err, size_t errlen)
{
    memset(hf, 0, sizeof *hf);
    s_reader_t r = { .path = path, .hf = hf };
    int rc = bn_read_file(path, "", s_hosts_read, &r, err, errlen);
    if (rc == BN_OK && hf->n_hosts == 0)
        rc = bn_fail(err, errlen, BN_EFORMAT, "%s: no host listed", path);
    if (rc == BN_OK)
        s_hosts_slots(&r);
    free(r.tally);
    if (rc != BN_OK)
        bn_hostfile_free(hf);
    return rc;
}

int bn_hostfile_place(bn_hostfile_t *hf, uint32_t n, char *err, size_t errlen)
{
    if (n == 0)
        return bn_fail(err, errlen, BN_EARG, "a swarm needs at least one node");
    uint64_t total = 0;
    bool unlimited = false;
    for (uint32_t h = 0; h < hf->n_hosts; h++) {
        hf->hosts[h].count = 0;
        if (hf->hosts[h].slots == 0)
            unlimited = true;
        total += hf->hosts[h].slots;
    }
    if (!unlimited && total < n)
        return bn_fail(err, errlen, BN_EARG, "%u nodes but the %u host(s) have %llu slots in all",
                       n, hf->n_hosts, (unsigned long long) total);
    uint32_t left = n;
    while (left > 0)
        for (uint32_t h = 0; h < hf->n_hosts && left > 0; h++) {
            bn_host_t *x = &hf->hosts[h];
            if (x->slots == 0 || x->count < x->slots) {
                x->count++;
                left--;
            }
        }
    uint32_t next = 0;
    for (uint32_t h = 0; h < hf->n_hosts; h++) {
        hf->hosts[h].first = next;
        next += hf->hosts[h].count;
    }
    return BN_OK;
}

int bn_ids_parse(const char *spec, uint32_t limit, uint32_t **ids, uint32_t *count,
                 char *err, size_t errlen)
{
    *ids = NULL;
    *count = 0;
    if (limit == 0)
        return bn_fail(err, errlen, BN_EARG, "--ids %s: the swarm has no nodes", spec);
    bool *seen = calloc(limit, sizeof *seen);
    uint32_t *out = malloc(limit * sizeof *out);
    uint32_t k = 0;
    int rc = BN_OK;
    if (!seen || !out) {
        rc = bn_fail(err, errlen, BN_ENOMEM, "out of memory");
        goto done;
    }
    const char *p = spec;
    if (!*p) {
        rc = bn_fail(err, errlen, BN_EARG, "--ids: empty list");
        goto done;
    }
    while (*p) {
        const char *part = p;
        char *end;
        if (!isdigit((unsigned char) *p))
            goto bad;
        errno = 0;
        unsigned long a = strtoul(p, &end, 10), b = a;
        if (errno)
            goto bad;
        p = end;
        if (*p == '-') {
            p++;
            if (!isdigit((unsigned char) *p))
                goto bad;
            b = strtoul(p, &end, 10);
            if (errno)
                goto bad;
            p = end;
        }
        if (*p != ',' && *p != '\0')
            goto bad;
        if (a > b || b >= limit) {
            int plen = (int) (p - part);
            rc = bn_fail(err, errlen, BN_EARG, "--ids %s: '%.*s' is not a range of ids within 0..%u",
                         spec, plen > 32 ? 32 : plen, part, limit - 1);
            goto done;
        }
        for (unsigned long i = a; i <= b; i++) {
            if (seen[i]) {
                rc = bn_fail(err, errlen, BN_EARG, "--ids %s: id %lu is listed twice", spec, i);
                goto done;
            }
            seen[i] = true;
            out[k++] = (uint32_t) i;
        }
        if (*p == ',') {
            p++;
            if (!*p)
                goto bad;
        }
        continue;
    bad:
        rc = bn_fail(err, errlen, BN_EARG, "--ids %s: expected ids and ranges like 0-4,7,9-12", spec);
        goto done;
    }
done:
    free(seen);
    if (rc != BN_OK) {
        free(out);
        return rc;
    }
    *ids = out;
    *count = k;
    return BN_OK;
}
