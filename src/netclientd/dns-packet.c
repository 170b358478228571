/* The mesh DNS responder's packet logic: one query in, one answer out (RFC 1035 subset). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "dns-packet.h"
#include "macro.h"

typedef struct DnsEntry {
        GArray *v4; /* of struct in_addr */
        GArray *v6; /* of struct in6_addr */
} DnsEntry;

struct DnsZone {
        GPtrArray *domains;  /* lower-case */
        GHashTable *records; /* lower-case name -> DnsEntry */
        GHashTable *parents; /* every proper suffix of a record's name: names that exist without records */
};

static void entry_free(DnsEntry *e)
{
        g_array_unref(e->v4);
        g_array_unref(e->v6);
        g_free(e);
}

DnsZone *dns_zone_new(void)
{
        DnsZone *z = g_new0(DnsZone, 1);
        z->domains = g_ptr_array_new_with_free_func(g_free);
        z->records = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)entry_free);
        z->parents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return z;
}

void dns_zone_free(DnsZone *z)
{
        if (!z)
                return;
        g_ptr_array_unref(z->domains);
        g_hash_table_unref(z->records);
        g_hash_table_unref(z->parents);
        g_free(z);
}

void dns_zone_clear(DnsZone *z)
{
        g_ptr_array_set_size(z->domains, 0);
        g_hash_table_remove_all(z->records);
        g_hash_table_remove_all(z->parents);
}

guint dns_zone_size(const DnsZone *z)
{
        return g_hash_table_size(z->records);
}

static bool name_ok(const char *name)
{
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n > 253 || name[0] == '.' || name[n - 1] == '.')
                return false;
        size_t label = 0;
        for (size_t i = 0; i < n; i++) {
                if (name[i] == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                        continue;
                }
                if (!g_ascii_isalnum(name[i]) && name[i] != '-' && name[i] != '_')
                        return false;
                if (++label > 63)
                        return false;
        }
        return true;
}

int dns_zone_add_domain(DnsZone *z, const char *domain)
{
        if (!name_ok(domain))
                return -EINVAL;
        g_ptr_array_add(z->domains, g_ascii_strdown(domain, -1));
        return 0;
}

int dns_zone_add_record(DnsZone *z, const char *name, int family, const NmInAddr *addr)
{
        if (!name_ok(name) || (family != AF_INET && family != AF_INET6))
                return -EINVAL;
        g_autofree char *key = g_ascii_strdown(name, -1);
        DnsEntry *e = g_hash_table_lookup(z->records, key);
        if (!e) {
                e = g_new0(DnsEntry, 1);
                e->v4 = g_array_new(FALSE, FALSE, sizeof(struct in_addr));
                e->v6 = g_array_new(FALSE, FALSE, sizeof(struct in6_addr));
                /* "nas.lab.office.nm.internal" makes "lab.office.nm.internal" exist (NODATA, not
                 * NXDOMAIN: RFC 8020 lets resolvers prune whole subtrees on NXDOMAIN). */
                for (const char *d = strchr(key, '.'); d; d = strchr(d + 1, '.'))
                        g_hash_table_add(z->parents, g_strdup(d + 1));
                g_hash_table_insert(z->records, TAKE_PTR(key), e);
        }
        GArray *a = family == AF_INET ? e->v4 : e->v6;
        size_t len = family == AF_INET ? 4 : 16;
        for (guint i = 0; i < a->len; i++)
                if (memcmp(a->data + i * len, addr, len) == 0)
                        return 0; /* already there */
        g_array_append_vals(a, addr, 1);
        return 0;
}

/* The zone `name` is in (the longest that matches), or NULL. */
static const char *zone_of(const DnsZone *z, const char *name)
{
        size_t n = strlen(name);
        const char *best = NULL;
        for (guint i = 0; i < z->domains->len; i++) {
                const char *d = z->domains->pdata[i];
                size_t dn = strlen(d);
                if ((n == dn && memcmp(name, d, n) == 0) ||
                    (n > dn && name[n - dn - 1] == '.' && memcmp(name + n - dn, d, dn) == 0))
                        if (!best || dn > strlen(best))
                                best = d;
        }
        return best;
}

static unsigned count_labels(const char *name)
{
        unsigned k = *name ? 1 : 0;
        for (const char *p = name; *p; p++)
                k += *p == '.';
        return k;
}

typedef struct Question {
        char name[256]; /* lower-case, dotted, no trailing dot; "" for the root */
        size_t end;     /* offset just past QTYPE/QCLASS */
        uint16_t qtype, qclass;
} Question;

/* Reads the one question. Compression pointers are refused: a query has nothing to point at. */
static int parse_question(const uint8_t *q, size_t len, Question *ret)
{
        size_t off = 12, out = 0;

        for (;;) {
                if (off >= len)
                        return -EBADMSG;
                uint8_t l = q[off++];
                if (l == 0)
                        break;
                if (l > 63)
                        return -EBADMSG; /* pointer or reserved label type */
                if (off + l > len || out + l + 1 > 254)
                        return -EBADMSG;
                if (out > 0)
                        ret->name[out++] = '.';
                for (uint8_t i = 0; i < l; i++) {
                        char c = (char)q[off + i];
                        /* Names with dots or control bytes inside a label never match a record; refuse them.
                         */
                        if (c == '.' || (unsigned char)c < 0x21 || (unsigned char)c > 0x7e)
                                return -EBADMSG;
                        ret->name[out++] = g_ascii_tolower(c);
                }
                off += l;
        }
        ret->name[out] = 0;
        if (off + 4 > len)
                return -EBADMSG;
        ret->qtype = (uint16_t)(q[off] << 8 | q[off + 1]);
        ret->qclass = (uint16_t)(q[off + 2] << 8 | q[off + 3]);
        ret->end = off + 4;
        return 0;
}

typedef struct Edns {
        bool present;
        uint8_t version;
        uint16_t udp_size; /* what the client can receive over UDP */
} Edns;

/* The query's EDNS(0) OPT record (RFC 6891), when its only additional record is one: root owner
 * name, type 41. Anything else in the additional section (e.g. a TSIG we cannot check) is ignored
 * rather than refused. Returns -EBADMSG for a malformed OPT. */
static int parse_edns(const uint8_t *q, size_t len, size_t off, uint16_t arcount, Edns *ret)
{
        *ret = (Edns){};
        if (arcount != 1 || off >= len || q[off] != 0)
                return 0;
        if (off + 11 > len)
                return -EBADMSG;
        uint16_t type = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
        if (type != DNS_TYPE_OPT)
                return 0;
        uint16_t rdlen = (uint16_t)(q[off + 9] << 8 | q[off + 10]);
        if (off + 11 + rdlen > len)
                return -EBADMSG;
        ret->present = true;
        ret->udp_size = (uint16_t)(q[off + 3] << 8 | q[off + 4]);
        ret->version = q[off + 6];
        return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}

static size_t header_only(const uint8_t *query, uint8_t *out, uint8_t rcode, bool echo_rd)
{
        memset(out, 0, 12);
        out[0] = query[0];
        out[1] = query[1];
        out[2] = 0x80 | (query[2] & 0x78) | (echo_rd ? (query[2] & 0x01) : 0); /* QR, opcode, RD */
        out[3] = rcode & 0x0f;
        return 12;
}

#define OPT_RR_SIZE 11

/* Appends our OPT record: our UDP size, the upper bits of the rcode, version 0, no options. */
static size_t put_opt(uint8_t *out, size_t n, unsigned ext_rcode)
{
        out[n] = 0; /* root */
        put16(out + n + 1, DNS_TYPE_OPT);
        put16(out + n + 3, DNS_EDNS_UDP_SIZE);
        out[n + 5] = (uint8_t)(ext_rcode >> 4);
        out[n + 6] = 0; /* version */
        out[n + 7] = 0; /* DO and the other flags: none (no DNSSEC here) */
        out[n + 8] = 0;
        put16(out + n + 9, 0);
        put16(out + 10, 1); /* ARCOUNT */
        return n + OPT_RR_SIZE;
}

#define SOA_RR_SIZE (12 + 2 + 13 + 20)

/* The zone's SOA record, owner and names compressed to the apex in the question: MNAME the apex,
 * RNAME hostmaster.<apex>, and every timer DNS_TTL (negative answers are cached that long). */
static size_t put_soa(uint8_t *out, size_t n, size_t apex_off)
{
        uint16_t ptr = (uint16_t)(0xc000 | apex_off);
        put16(out + n, ptr);
        put16(out + n + 2, DNS_TYPE_SOA);
        put16(out + n + 4, DNS_CLASS_IN);
        put16(out + n + 6, 0);
        put16(out + n + 8, DNS_TTL);
        put16(out + n + 10, 2 + 13 + 20);
        n += 12;
        put16(out + n, ptr); /* MNAME */
        n += 2;
        out[n++] = 10; /* RNAME */
        memcpy(out + n, "hostmaster", 10);
        n += 10;
        put16(out + n, ptr);
        n += 2;
        static const uint32_t timers[5] = {1, DNS_TTL, DNS_TTL, DNS_TTL,
                                           DNS_TTL}; /* serial, refresh, retry, expire, minimum */
        for (size_t i = 0; i < 5; i++) {
                put16(out + n, (uint16_t)(timers[i] >> 16));
                put16(out + n + 2, (uint16_t)timers[i]);
                n += 4;
        }
        return n;
}

bool dns_zone_covers(const DnsZone *z, const char *name)
{
        return zone_of(z, name) != NULL;
}

int dns_query_parse(const uint8_t *query, size_t len, DnsQuery *ret)
{
        Question qn;
        Edns edns;

        if (len < 12 || (query[2] & 0x80) || ((query[2] >> 3) & 0x0f) != 0)
                return -EBADMSG;
        uint16_t qd = (uint16_t)(query[4] << 8 | query[5]);
        uint16_t an = (uint16_t)(query[6] << 8 | query[7]);
        uint16_t ns = (uint16_t)(query[8] << 8 | query[9]);
        uint16_t ar = (uint16_t)(query[10] << 8 | query[11]);
        if (qd != 1 || an != 0 || ns != 0 || parse_question(query, len, &qn) < 0 ||
            parse_edns(query, len, qn.end, ar, &edns) < 0 || (edns.present && edns.version != 0) ||
            qn.qclass != DNS_CLASS_IN || qn.end - 12 > sizeof(ret->qwire))
                return -EBADMSG;
        *ret = (DnsQuery){
                .id = (uint16_t)(query[0] << 8 | query[1]),
                .rd = query[2] & 0x01,
                .qwire_len = qn.end - 12,
                .qtype = qn.qtype,
                .qclass = qn.qclass,
                .edns = edns.present,
                .udp_size = edns.present ? MAX(edns.udp_size, DNS_MAX_UDP) : DNS_MAX_UDP,
        };
        memcpy(ret->name, qn.name, sizeof(ret->name));
        memcpy(ret->qwire, query + 12, ret->qwire_len);
        return 0;
}

size_t dns_query_udp_limit(const DnsQuery *q)
{
        return q->edns ? MIN((size_t)q->udp_size, (size_t)DNS_EDNS_UDP_SIZE) : DNS_MAX_UDP;
}

ssize_t dns_query_write_upstream(const DnsQuery *q, uint16_t id, uint8_t *out, size_t max)
{
        if (12 + q->qwire_len + OPT_RR_SIZE > max)
                return -ENOBUFS;
        memset(out, 0, 12);
        put16(out, id);
        out[2] = 0x01; /* RD: we ask a recursive resolver */
        put16(out + 4, 1);
        memcpy(out + 12, q->qwire, q->qwire_len);
        return (ssize_t)put_opt(out, 12 + q->qwire_len, 0);
}

ssize_t dns_query_write_empty(const DnsQuery *q, uint8_t rcode, bool ra, uint8_t *out, size_t max)
{
        if (12 + q->qwire_len + (q->edns ? OPT_RR_SIZE : 0) > max)
                return -ENOBUFS;
        memset(out, 0, 12);
        put16(out, q->id);
        out[2] = 0x80 | (q->rd ? 0x01 : 0);
        out[3] = (uint8_t)((ra ? 0x80 : 0) | (rcode & 0x0f));
        put16(out + 4, 1);
        memcpy(out + 12, q->qwire, q->qwire_len);
        size_t n = 12 + q->qwire_len;
        return (ssize_t)(q->edns ? put_opt(out, n, 0) : n);
}

ssize_t dns_answer(const DnsZone *z, const uint8_t *query, size_t len, bool udp, uint8_t *out, size_t max)
{
        Question qn;
        Edns edns;

        if (len < 12 || max < 12)
                return -EBADMSG;
        if (query[2] & 0x80)
                return -EBADMSG; /* a response: never answer it (no reflection loops) */
        uint8_t opcode = (query[2] >> 3) & 0x0f;
        uint16_t qd = (uint16_t)(query[4] << 8 | query[5]);
        uint16_t an = (uint16_t)(query[6] << 8 | query[7]);
        uint16_t ns = (uint16_t)(query[8] << 8 | query[9]);
        uint16_t ar = (uint16_t)(query[10] << 8 | query[11]);

        if (opcode != 0)
                return (ssize_t)header_only(query, out, DNS_RCODE_NOTIMP, true);
        if (qd != 1 || an != 0 || ns != 0 || parse_question(query, len, &qn) < 0 ||
            parse_edns(query, len, qn.end, ar, &edns) < 0)
                return (ssize_t)header_only(query, out, DNS_RCODE_FORMERR, true);

        /* Over UDP a client takes 512 bytes, or what its EDNS record says up to our own limit. */
        size_t limit = max;
        if (udp)
                limit = MIN(max, edns.present ? MIN((size_t)MAX(edns.udp_size, DNS_MAX_UDP),
                                                    (size_t)DNS_EDNS_UDP_SIZE)
                                              : (size_t)DNS_MAX_UDP);
        size_t reserve = edns.present ? OPT_RR_SIZE : 0;
        /* The question must fit in the reply with the header (and our OPT). */
        if (qn.end + reserve > limit)
                return (ssize_t)header_only(query, out, DNS_RCODE_SERVFAIL, true);

        size_t n = header_only(query, out, DNS_RCODE_NOERROR, true);
        memcpy(out + n, query + 12, qn.end - 12); /* echo the question as asked (case preserved) */
        n = qn.end;
        put16(out + 4, 1);

        if (edns.present && edns.version != 0) {
                /* BADVERS (16): the low 4 bits in the header, the rest in the OPT record. */
                out[3] = DNS_RCODE_BADVERS & 0x0f;
                return (ssize_t)put_opt(out, n, DNS_RCODE_BADVERS);
        }
        const char *apex = qn.qclass == DNS_CLASS_IN ? zone_of(z, qn.name) : NULL;
        if (!apex) {
                out[3] = DNS_RCODE_REFUSED;
                return (ssize_t)(edns.present ? put_opt(out, n, 0) : n);
        }
        out[2] |= 0x04; /* AA: we are the authority for our mesh names */
        /* Where the apex starts in the question, for compression pointers to it. */
        size_t apex_off = 12;
        for (unsigned skip = count_labels(qn.name) - count_labels(apex); skip > 0; skip--)
                apex_off += 1 + query[apex_off];
        bool at_apex = streq0(qn.name, apex);

        if (at_apex && (qn.qtype == DNS_TYPE_SOA || qn.qtype == DNS_TYPE_ANY) &&
            n + SOA_RR_SIZE + reserve <= limit) {
                n = put_soa(out, n, apex_off);
                put16(out + 6, 1);
                return (ssize_t)(edns.present ? put_opt(out, n, 0) : n);
        }
        const DnsEntry *e = g_hash_table_lookup(z->records, qn.name);
        if (!e) {
                /* A zone's apex and the parents of names exist, with no addresses: NODATA. Either way
                 * the SOA goes in the authority section so resolvers may cache the answer briefly
                 * (RFC 2308). */
                if (!at_apex && !g_hash_table_contains(z->parents, qn.name))
                        out[3] = DNS_RCODE_NXDOMAIN;
                if (n + SOA_RR_SIZE + reserve <= limit) {
                        n = put_soa(out, n, apex_off);
                        put16(out + 8, 1); /* NSCOUNT */
                }
                return (ssize_t)(edns.present ? put_opt(out, n, 0) : n);
        }

        bool want4 = qn.qtype == DNS_TYPE_A || qn.qtype == DNS_TYPE_ANY;
        bool want6 = qn.qtype == DNS_TYPE_AAAA || qn.qtype == DNS_TYPE_ANY;
        uint16_t count = 0;
        for (int fam = 0; fam < 2; fam++) {
                GArray *a = fam == 0 ? e->v4 : e->v6;
                if ((fam == 0 && !want4) || (fam == 1 && !want6))
                        continue;
                size_t rdlen = fam == 0 ? 4 : 16;
                for (guint i = 0; i < a->len; i++) {
                        if (n + 12 + rdlen + reserve > limit) {
                                out[2] |= 0x02; /* TC: ask again over TCP */
                                goto done;
                        }
                        put16(out + n, 0xc00c); /* name: pointer to the question */
                        put16(out + n + 2, fam == 0 ? DNS_TYPE_A : DNS_TYPE_AAAA);
                        put16(out + n + 4, DNS_CLASS_IN);
                        out[n + 6] = 0;
                        out[n + 7] = 0;
                        put16(out + n + 8, DNS_TTL);
                        put16(out + n + 10, (uint16_t)rdlen);
                        memcpy(out + n + 12, (const uint8_t *)a->data + i * rdlen, rdlen);
                        n += 12 + rdlen;
                        count++;
                }
        }
done:
        put16(out + 6, count);
        /* Zero answers for an existing name is NODATA: NOERROR with an empty answer section, and
         * the SOA for caching as above. */
        if (count == 0 && !(out[2] & 0x02) && n + SOA_RR_SIZE + reserve <= limit) {
                n = put_soa(out, n, apex_off);
                put16(out + 8, 1);
        }
        return (ssize_t)(edns.present ? put_opt(out, n, 0) : n);
}
