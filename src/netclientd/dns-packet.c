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
        GPtrArray *domains;   /* lower-case */
        GHashTable *records;  /* lower-case name -> DnsEntry */
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
        z->records = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) entry_free);
        return z;
}

void dns_zone_free(DnsZone *z)
{
        if (!z)
                return;
        g_ptr_array_unref(z->domains);
        g_hash_table_unref(z->records);
        g_free(z);
}

void dns_zone_clear(DnsZone *z)
{
        g_ptr_array_set_size(z->domains, 0);
        g_hash_table_remove_all(z->records);
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
                g_hash_table_insert(z->records, TAKE_PTR(key), e);
        }
        if (family == AF_INET)
                g_array_append_val(e->v4, addr->in);
        else
                g_array_append_val(e->v6, addr->in6);
        return 0;
}

static bool in_zone(const DnsZone *z, const char *name)
{
        size_t n = strlen(name);
        for (guint i = 0; i < z->domains->len; i++) {
                const char *d = z->domains->pdata[i];
                size_t dn = strlen(d);
                if (n == dn && memcmp(name, d, n) == 0)
                        return true;
                if (n > dn && name[n - dn - 1] == '.' && memcmp(name + n - dn, d, dn) == 0)
                        return true;
        }
        return false;
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
                        char c = (char) q[off + i];
                        /* Names with dots or control bytes inside a label never match a record; refuse them. */
                        if (c == '.' || (unsigned char) c < 0x21 || (unsigned char) c > 0x7e)
                                return -EBADMSG;
                        ret->name[out++] = g_ascii_tolower(c);
                }
                off += l;
        }
        ret->name[out] = 0;
        if (off + 4 > len)
                return -EBADMSG;
        ret->qtype = (uint16_t) (q[off] << 8 | q[off + 1]);
        ret->qclass = (uint16_t) (q[off + 2] << 8 | q[off + 3]);
        ret->end = off + 4;
        return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
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

ssize_t dns_answer(const DnsZone *z, const uint8_t *query, size_t len, uint8_t *out, size_t max)
{
        Question qn;

        if (len < 12 || max < 12)
                return -EBADMSG;
        if (query[2] & 0x80)
                return -EBADMSG; /* a response: never answer it (no reflection loops) */
        uint8_t opcode = (query[2] >> 3) & 0x0f;
        uint16_t qd = (uint16_t) (query[4] << 8 | query[5]);
        uint16_t an = (uint16_t) (query[6] << 8 | query[7]);
        uint16_t ns = (uint16_t) (query[8] << 8 | query[9]);

        if (opcode != 0)
                return (ssize_t) header_only(query, out, DNS_RCODE_NOTIMP, true);
        if (qd != 1 || an != 0 || ns != 0 || parse_question(query, len, &qn) < 0)
                return (ssize_t) header_only(query, out, DNS_RCODE_FORMERR, true);
        /* The question must fit in the reply with the header. */
        if (qn.end > max)
                return (ssize_t) header_only(query, out, DNS_RCODE_SERVFAIL, true);

        size_t n = header_only(query, out, DNS_RCODE_NOERROR, true);
        memcpy(out + n, query + 12, qn.end - 12); /* echo the question as asked (case preserved) */
        n = qn.end;
        put16(out + 4, 1);

        if (qn.qclass != DNS_CLASS_IN || !in_zone(z, qn.name)) {
                out[3] = DNS_RCODE_REFUSED;
                return (ssize_t) n;
        }
        out[2] |= 0x04; /* AA: we are the authority for our mesh names */

        const DnsEntry *e = g_hash_table_lookup(z->records, qn.name);
        if (!e) {
                out[3] = DNS_RCODE_NXDOMAIN;
                return (ssize_t) n;
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
                        if (n + 12 + rdlen > max) {
                                out[2] |= 0x02; /* TC: ask again over TCP */
                                goto done;
                        }
                        put16(out + n, 0xc00c); /* name: pointer to the question */
                        put16(out + n + 2, fam == 0 ? DNS_TYPE_A : DNS_TYPE_AAAA);
                        put16(out + n + 4, DNS_CLASS_IN);
                        out[n + 6] = 0;
                        out[n + 7] = 0;
                        put16(out + n + 8, DNS_TTL);
                        put16(out + n + 10, (uint16_t) rdlen);
                        memcpy(out + n + 12, (const uint8_t *) a->data + i * rdlen, rdlen);
                        n += 12 + rdlen;
                        count++;
                }
        }
done:
        put16(out + 6, count);
        /* Zero answers for an existing name is NODATA: NOERROR with an empty answer section. */
        return (ssize_t) n;
}
