/* Token buckets per source address, in a table of bounded size, so that anonymous endpoints
 * (netmakerd's POST /login and /hosts/register, netclientd's forwarded DNS queries) cannot be
 * flooded from one address and a flood of many addresses cannot grow the daemon's memory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <glib.h>

typedef struct RateLimit RateLimit;

/* Each source may make `burst` requests at once; its bucket refills evenly, `burst` requests per
 * `period_usec`. At most `max_sources` sources are tracked: a source whose bucket has refilled is
 * forgotten (it is as good as new), and while the table is full of busy sources, new ones share
 * one bucket of the same size (and a source that gets a place while that one is not full again
 * starts from its level, so no source gets more than one bucket's worth). -EINVAL for a zero
 * burst, period or table. */
int ratelimit_new(unsigned burst, uint64_t period_usec, unsigned max_sources, RateLimit **ret);
void ratelimit_free(RateLimit *rl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RateLimit, ratelimit_free)

/* Counts IPv6 sources by a prefix of `prefixlen` bits (a multiple of 8, 8-128) instead of /64: 128
 * where every address is its own client (a mesh, whose addresses share one /64). -EINVAL for
 * another length. */
int ratelimit_set_ipv6_prefix(RateLimit *rl, unsigned prefixlen);

/* Counts one request of the source of `sa` at `now_usec` (a monotonic clock): 0 when it may go
 * ahead, -EBUSY when it is over the limit, with *ret_retry_usec the time until one more would be
 * allowed. IPv4 addresses (also IPv4-mapped IPv6 ones) are sources of their own; IPv6 addresses
 * count by /64, the block one subscriber usually has; anything else (a Unix socket) is one source. */
int ratelimit_check(RateLimit *rl, const struct sockaddr *sa, uint64_t now_usec, uint64_t *ret_retry_usec);

/* The source of `sa` as ratelimit_check() counts it, for messages: "192.0.2.7",
 * "2001:db8:1:2::/64", "local". */
char *ratelimit_source_name(const struct sockaddr *sa);

unsigned ratelimit_burst(const RateLimit *rl);
uint64_t ratelimit_period_usec(const RateLimit *rl);
/* How many sources the table holds now (never more than max_sources). */
unsigned ratelimit_n_sources(const RateLimit *rl);
/* Whether requests had to share the overflow bucket (the table was full) since the last time this
 * said so; at most once a period, so that a flood makes one log line, not one per request. */
bool ratelimit_overflow_notice(RateLimit *rl, uint64_t now_usec);
