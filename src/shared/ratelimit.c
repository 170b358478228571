/* Token buckets per source address in a table of bounded size (see ratelimit.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "macro.h"
#include "ratelimit.h"

/* A family tag and 16 address bytes (an IPv4 address, or an IPv6 prefix of ipv6_bytes, zero-padded). */
#define SOURCE_KEY_LEN 17
#define KEY_LOCAL      0
#define KEY_IPV4       4
#define KEY_IPV6       6

/* The bucket is kept in microseconds of refill time: a full bucket holds `capacity` of them, a
 * request costs `cost` = capacity / burst. Time is the one quantity that refills by itself, so
 * bringing a bucket up to date is one addition. */
typedef struct Source {
        uint8_t key[SOURCE_KEY_LEN];
        uint64_t credit; /* at most capacity */
        uint64_t stamp;  /* when `credit` was last brought up to date */
        GList link;      /* in RateLimit.lru, data = this */
} Source;

struct RateLimit {
        uint64_t cost;
        uint64_t capacity;
        unsigned max_sources;
        unsigned ipv6_bytes; /* how much of an IPv6 address names its source: 8 (/64) unless set */
        GHashTable *sources; /* key bytes → Source, owned */
        GQueue lru;          /* of Source, least recently seen first: so also the oldest stamps first */
        Source overflow;     /* shared by new sources while the table is full */
        bool overflowed;     /* since the last notice */
        bool noticed;
        uint64_t noticed_at;
};

/* Source addresses are chosen by the clients: a keyed hash (SipHash) keeps them from filling one
 * hash chain on purpose. */
static uint8_t hash_key[crypto_shorthash_KEYBYTES];

static guint key_hash(gconstpointer k)
{
        uint8_t h[crypto_shorthash_BYTES];
        crypto_shorthash(h, k, SOURCE_KEY_LEN, hash_key);
        guint v;
        memcpy(&v, h, sizeof(v));
        return v;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
        return memcmp(a, b, SOURCE_KEY_LEN) == 0;
}

static void source_free(gpointer p)
{
        g_free(p);
}

int ratelimit_new(unsigned burst, uint64_t period_usec, unsigned max_sources, RateLimit **ret)
{
        static gsize keyed = 0;

        if (burst == 0 || period_usec == 0 || max_sources == 0)
                return -EINVAL;
        if (g_once_init_enter(&keyed)) {
                randombytes_buf(hash_key, sizeof(hash_key));
                g_once_init_leave(&keyed, 1);
        }
        RateLimit *rl = g_new0(RateLimit, 1);
        rl->cost = MAX(period_usec / burst, 1);
        rl->capacity = rl->cost * burst;
        rl->max_sources = max_sources;
        rl->ipv6_bytes = 8;
        rl->sources = g_hash_table_new_full(key_hash, key_equal, NULL, source_free);
        g_queue_init(&rl->lru);
        rl->overflow.credit = rl->capacity;
        *ret = rl;
        return 0;
}

void ratelimit_free(RateLimit *rl)
{
        if (!rl)
                return;
        /* No g_queue_clear(): the links live in the sources, which the table frees. */
        g_hash_table_destroy(rl->sources);
        g_free(rl);
}

int ratelimit_set_ipv6_prefix(RateLimit *rl, unsigned prefixlen)
{
        if (prefixlen == 0 || prefixlen > 128 || prefixlen % 8 != 0)
                return -EINVAL;
        rl->ipv6_bytes = prefixlen / 8;
        return 0;
}

static void source_key(const struct sockaddr *sa, unsigned ipv6_bytes, uint8_t key[SOURCE_KEY_LEN])
{
        memset(key, 0, SOURCE_KEY_LEN);
        if (sa && sa->sa_family == AF_INET) {
                key[0] = KEY_IPV4;
                memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                /* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d: each is its own source,
                 * not all of them one /64. */
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        key[0] = KEY_IPV4;
                        memcpy(key + 1, a->s6_addr + 12, 4);
                } else {
                        key[0] = KEY_IPV6;
                        memcpy(key + 1, a->s6_addr, ipv6_bytes);
                }
        } else
                key[0] = KEY_LOCAL;
}

char *ratelimit_source_name(const struct sockaddr *sa)
{
        uint8_t key[SOURCE_KEY_LEN];
        char buf[INET6_ADDRSTRLEN];

        source_key(sa, 8, key);
        switch (key[0]) {
        case KEY_IPV4:
                return g_strdup(inet_ntop(AF_INET, key + 1, buf, sizeof(buf)));
        case KEY_IPV6:
                return g_strdup_printf("%s/64", inet_ntop(AF_INET6, key + 1, buf, sizeof(buf)));
        default:
                return g_strdup("local");
        }
}

static void refill(RateLimit *rl, Source *s, uint64_t now)
{
        if (now > s->stamp) {
                s->credit = MIN(rl->capacity, s->credit + (now - s->stamp));
                s->stamp = now;
        }
}

/* A source last seen a full period ago has a full bucket again: it is as good as a new one, so
 * forgetting it loses nothing. The queue holds the oldest first. */
static void forget_idle(RateLimit *rl, uint64_t now)
{
        GList *l;
        while ((l = g_queue_peek_head_link(&rl->lru))) {
                Source *s = l->data;
                if (now < s->stamp || now - s->stamp < rl->capacity)
                        break;
                g_queue_unlink(&rl->lru, l);
                g_hash_table_remove(rl->sources, s->key);
        }
}

int ratelimit_check(RateLimit *rl, const struct sockaddr *sa, uint64_t now, uint64_t *ret_retry_usec)
{
        uint8_t key[SOURCE_KEY_LEN];
        Source *s;

        source_key(sa, rl->ipv6_bytes, key);
        forget_idle(rl, now);
        refill(rl, &rl->overflow, now);
        s = g_hash_table_lookup(rl->sources, key);
        if (s)
                g_queue_unlink(&rl->lru, &s->link);
        else if (g_hash_table_size(rl->sources) < rl->max_sources) {
                s = g_new0(Source, 1);
                memcpy(s->key, key, SOURCE_KEY_LEN);
                /* Full, unless the shared bucket is in use: this source may have drawn from it a
                 * moment ago, and must not leave it for a fresh bucket of its own. */
                s->credit = rl->overflow.credit;
                s->stamp = now;
                s->link.data = s;
                g_hash_table_insert(rl->sources, s->key, s);
        } else {
                /* Every tracked source is busy. Evicting one would hand it a fresh bucket, so a
                 * flood from many addresses would buy itself more; newcomers share one instead. */
                s = &rl->overflow;
                rl->overflowed = true;
        }
        if (s != &rl->overflow)
                g_queue_push_tail_link(&rl->lru, &s->link);

        refill(rl, s, now);
        if (s->credit >= rl->cost) {
                s->credit -= rl->cost;
                return 0;
        }
        if (ret_retry_usec)
                *ret_retry_usec = rl->cost - s->credit;
        return -EBUSY;
}

unsigned ratelimit_burst(const RateLimit *rl)
{
        return (unsigned)(rl->capacity / rl->cost);
}

uint64_t ratelimit_period_usec(const RateLimit *rl)
{
        return rl->capacity;
}

unsigned ratelimit_n_sources(const RateLimit *rl)
{
        return g_hash_table_size(rl->sources);
}

bool ratelimit_overflow_notice(RateLimit *rl, uint64_t now)
{
        if (!rl->overflowed || (rl->noticed && now - rl->noticed_at < rl->capacity))
                return false;
        rl->overflowed = false;
        rl->noticed = true;
        rl->noticed_at = now;
        return true;
}
