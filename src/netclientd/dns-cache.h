/* The forwarding responder's cache of upstream answers: keyed by name, type and class, each kept
 * for its answer's TTL (dns-reply.h) and no longer, and bounded in entries and in size, the least
 * recently used going first, so a client asking for many names cannot grow netclientd. */
#pragma once

#include <stdint.h>
#include <glib.h>

#include "dns-reply.h"

/* A larger answer is not cached (it is rare, and would let few names fill the memory bound). */
#define DNS_CACHE_MAX_ENTRY_SIZE 4096

typedef struct DnsCache DnsCache;

/* At most `max_entries` answers. -EINVAL for 0. */
int dns_cache_new(unsigned max_entries, DnsCache **ret);
void dns_cache_free(DnsCache *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DnsCache, dns_cache_free)

/* Keeps `r` (taking it) as the answer to q's question from `now_usec` (a monotonic clock) on, if it
 * may be cached at all (r->ttl > 0, small enough); otherwise frees it. Returns 1 when kept. */
int dns_cache_put(DnsCache *c, const DnsQuery *q, DnsReply *r, uint64_t now_usec);
/* The answer to q's question while it is fresh, with its age in whole seconds; NULL otherwise
 * (an expired answer is dropped). The reply is the cache's: use it before the next put. */
const DnsReply *dns_cache_get(DnsCache *c, const DnsQuery *q, uint64_t now_usec, uint32_t *ret_age);
unsigned dns_cache_size(const DnsCache *c);
void dns_cache_clear(DnsCache *c);
