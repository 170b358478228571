/* Upstream answers for the forwarding responder: checked, stripped of OPT, rewritten per client. */
#include <errno.h>
#include <string.h>

#include "dns-reply.h"
#include "macro.h"

#define OPT_SIZE 11

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
        put16(p, (uint16_t)(v >> 16));
        put16(p + 2, (uint16_t)v);
}

/* A TTL with the top bit set counts as 0 (RFC 2181 §8). */
static uint32_t ttl_value(const uint8_t *p)
{
        uint32_t v = get32(p);
        return v & 0x80000000u ? 0 : v;
}

/* The offset just past the (possibly compressed) name at `off`, or -1 when it runs past `end` or
 * uses a reserved label type. Pointers are not followed: skipping needs only the bytes here. */
static ssize_t skip_name(const uint8_t *m, size_t end, size_t off)
{
        for (;;) {
                if (off >= end)
                        return -1;
                uint8_t l = m[off];
                if (l == 0)
                        return (ssize_t)(off + 1);
                if ((l & 0xc0) == 0xc0)
                        return off + 2 <= end ? (ssize_t)(off + 2) : -1;
                if (l & 0xc0)
                        return -1;
                off += 1 + (size_t)l;
        }
}

void dns_reply_free(DnsReply *r)
{
        if (!r)
                return;
        g_free(r->msg);
        if (r->ttls)
                g_array_unref(r->ttls);
        g_free(r);
}

int dns_reply_parse(const uint8_t *a, size_t len, const DnsQuery *q, uint16_t id, DnsReply **ret)
{
        if (len < 12 || get16(a) != id || !(a[2] & 0x80) || ((a[2] >> 3) & 0x0f) != 0 || get16(a + 4) != 1)
                return -EBADMSG;
        /* The question must be ours, name compared without case, type and class exactly. */
        size_t qlen = q->qwire_len;
        if (12 + qlen > len || qlen < 5)
                return -EBADMSG;
        for (size_t i = 0; i < qlen - 4; i++)
                if (g_ascii_tolower((char)a[12 + i]) != g_ascii_tolower((char)q->qwire[i]))
                        return -EBADMSG;
        if (memcmp(a + 12 + qlen - 4, q->qwire + qlen - 4, 4) != 0)
                return -EBADMSG;

        unsigned an = get16(a + 6), ns = get16(a + 8), ar = get16(a + 10);
        g_autoptr(DnsReply) r = g_new0(DnsReply, 1);
        r->msg = g_malloc(len);
        r->ttls = g_array_new(false, false, sizeof(uint16_t));
        r->rcode = a[3] & 0x0f;
        r->truncated = a[2] & 0x02;
        memcpy(r->msg, a, 12 + qlen);
        put16(r->msg, 0);
        r->msg[2] &= (uint8_t)~0x04; /* AA: we are no authority for what we forward */
        size_t in = 12 + qlen, out = 12 + qlen;
        unsigned kept_ar = 0;
        bool opt_seen = false, dropping = false, have_soa = false;
        uint32_t min_ttl = UINT32_MAX, soa_ttl = 0;

        for (unsigned i = 0; i < an + ns + ar; i++) {
                size_t start = in;
                ssize_t e = skip_name(a, len, in);
                if (e < 0 || (size_t)e + 10 > len)
                        return -EBADMSG;
                size_t fixed = (size_t)e;
                uint16_t type = get16(a + fixed), rdlen = get16(a + fixed + 8);
                size_t end = fixed + 10 + rdlen;
                if (end > len)
                        return -EBADMSG;
                in = end;
                bool additional = i >= an + ns;
                if (additional && type == DNS_TYPE_OPT) {
                        /* Ours is written per client; its extended rcode would be an error we
                         * cannot pass on. Records after it are dropped too (they may point into
                         * it, and additional records are optional anyway). */
                        if (opt_seen || a[start] != 0)
                                return -EBADMSG;
                        opt_seen = true;
                        if (a[fixed + 4] != 0)
                                return -EPROTO;
                        dropping = true;
                        continue;
                }
                if (dropping)
                        continue;
                uint32_t ttl = ttl_value(a + fixed + 4);
                if (!additional)
                        min_ttl = MIN(min_ttl, ttl);
                if (i >= an && !additional && type == DNS_TYPE_SOA && !have_soa) {
                        /* MNAME, RNAME, then serial, refresh, retry, expire, MINIMUM. */
                        ssize_t p = skip_name(a, end, fixed + 10);
                        p = p < 0 ? -1 : skip_name(a, end, (size_t)p);
                        if (p < 0 || (size_t)p + 20 > end)
                                return -EBADMSG;
                        soa_ttl = MIN(ttl, ttl_value(a + p + 16));
                        have_soa = true;
                }
                uint16_t ttl_off = (uint16_t)(out + (fixed - start) + 4);
                memcpy(r->msg + out, a + start, end - start);
                g_array_append_val(r->ttls, ttl_off);
                out += end - start;
                if (additional)
                        kept_ar++;
        }
        put16(r->msg + 10, (uint16_t)kept_ar);
        r->len = out;

        uint32_t ttl = 0;
        if (!r->truncated && r->rcode == DNS_RCODE_NOERROR && an > 0)
                ttl = min_ttl;
        else if (!r->truncated && (r->rcode == DNS_RCODE_NXDOMAIN || r->rcode == DNS_RCODE_NOERROR) &&
                 have_soa)
                ttl = soa_ttl; /* negative: NXDOMAIN, or NODATA */
        r->ttl = MIN(ttl, (uint32_t)DNS_REPLY_MAX_TTL);
        *ret = TAKE_PTR(r);
        return 0;
}

ssize_t dns_reply_write(const DnsReply *r, const DnsQuery *q, uint32_t age, bool udp, uint8_t *out,
                        size_t max)
{
        size_t limit = udp ? MIN(max, dns_query_udp_limit(q)) : max;
        size_t need = r->len + (q->edns ? OPT_SIZE : 0);

        if (r->len < 12 + q->qwire_len)
                return -EINVAL;
        if (need > limit) {
                if (!udp)
                        return -ENOBUFS;
                ssize_t n = dns_query_write_empty(q, r->rcode, r->msg[3] & 0x80, out, limit);
                if (n >= 0)
                        out[2] |= 0x02; /* TC */
                return n;
        }
        memcpy(out, r->msg, r->len);
        put16(out, q->id);
        out[2] = (uint8_t)((r->msg[2] & ~0x01) | (q->rd ? 0x01 : 0));
        memcpy(out + 12, q->qwire, q->qwire_len);
        for (guint i = 0; i < r->ttls->len; i++) {
                uint16_t off = g_array_index(r->ttls, uint16_t, i);
                uint32_t ttl = ttl_value(out + off);
                put32(out + off, ttl > age ? ttl - age : 0);
        }
        size_t n = r->len;
        if (q->edns) {
                out[n] = 0;
                put16(out + n + 1, DNS_TYPE_OPT);
                put16(out + n + 3, DNS_EDNS_UDP_SIZE);
                memset(out + n + 5, 0, 6);
                put16(out + 10, (uint16_t)(get16(out + 10) + 1));
                n += OPT_SIZE;
        }
        return (ssize_t)n;
}
