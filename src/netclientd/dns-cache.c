/* A bounded LRU of upstream answers, each for its TTL (see dns-cache.h). */
#include <errno.h>
#include <string.h>

#include "dns-cache.h"
#include "macro.h"

typedef struct Entry {
        char *key; /* "<type>/<class>/<name>" */
        DnsReply *reply;
        uint64_t stored, expires; /* usec */
        GList link;               /* in DnsCache.lru, data = this; most recently used at the tail */
} Entry;

struct DnsCache {
        unsigned max_entries;
        GHashTable *entries; /* key -> Entry, owned */
        GQueue lru;
};

static void entry_free(Entry *e)
{
        dns_reply_free(e->reply);
        g_free(e->key);
        g_free(e);
}

int dns_cache_new(unsigned max_entries, DnsCache **ret)
{
        if (max_entries == 0)
                return -EINVAL;
        DnsCache *c = g_new0(DnsCache, 1);
        c->max_entries = max_entries;
        c->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)entry_free);
        g_queue_init(&c->lru);
        *ret = c;
        return 0;
}

void dns_cache_free(DnsCache *c)
{
        if (!c)
                return;
        /* No g_queue_clear(): the links live in the entries, which the table frees. */
        g_hash_table_destroy(c->entries);
        g_free(c);
}

static char *key_of(const DnsQuery *q)
{
        return g_strdup_printf("%u/%u/%s", q->qtype, q->qclass, q->name);
}

static void drop(DnsCache *c, Entry *e)
{
        g_queue_unlink(&c->lru, &e->link);
        g_hash_table_remove(c->entries, e->key);
}

int dns_cache_put(DnsCache *c, const DnsQuery *q, DnsReply *r, uint64_t now)
{
        if (r->ttl == 0 || r->len > DNS_CACHE_MAX_ENTRY_SIZE) {
                dns_reply_free(r);
                return 0;
        }
        g_autofree char *key = key_of(q);
        Entry *old = g_hash_table_lookup(c->entries, key);
        if (old)
                drop(c, old);
        while (g_hash_table_size(c->entries) >= c->max_entries)
                drop(c, g_queue_peek_head(&c->lru));
        Entry *e = g_new0(Entry, 1);
        e->key = TAKE_PTR(key);
        e->reply = r;
        e->stored = now;
        e->expires = now + (uint64_t)r->ttl * G_USEC_PER_SEC;
        e->link.data = e;
        g_hash_table_insert(c->entries, e->key, e);
        g_queue_push_tail_link(&c->lru, &e->link);
        return 1;
}

const DnsReply *dns_cache_get(DnsCache *c, const DnsQuery *q, uint64_t now, uint32_t *ret_age)
{
        g_autofree char *key = key_of(q);
        Entry *e = g_hash_table_lookup(c->entries, key);

        if (!e)
                return NULL;
        if (now >= e->expires || now < e->stored) {
                drop(c, e);
                return NULL;
        }
        g_queue_unlink(&c->lru, &e->link);
        g_queue_push_tail_link(&c->lru, &e->link);
        if (ret_age)
                *ret_age = (uint32_t)((now - e->stored) / G_USEC_PER_SEC);
        return e->reply;
}

unsigned dns_cache_size(const DnsCache *c)
{
        return g_hash_table_size(c->entries);
}

void dns_cache_clear(DnsCache *c)
{
        g_hash_table_remove_all(c->entries);
        g_queue_init(&c->lru);
}
