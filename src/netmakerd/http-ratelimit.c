/* The per-source rate limits of the anonymous endpoints (POST /login, POST /hosts/register)
 * applied to a request: 429 with Retry-After and a message that names the limit and its key. */
#include <errno.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "manager.h"
#include "nm-error.h"
#include "ratelimit.h"

/* "10 per minute", "30 per 90 s" */
static char *describe(const RateLimit *rl)
{
        uint64_t s = ratelimit_period_usec(rl) / 1000000;
        unsigned n = ratelimit_burst(rl);
        switch (s) {
        case 1:
                return g_strdup_printf("%u per second", n);
        case 60:
                return g_strdup_printf("%u per minute", n);
        case 3600:
                return g_strdup_printf("%u per hour", n);
        case 86400:
                return g_strdup_printf("%u per day", n);
        default:
                return g_strdup_printf("%u per %" G_GUINT64_FORMAT " s", n, s);
        }
}

int http_rate_limit(Request *r, RateLimit *limit, const char *what, const char *key, GError **error)
{
        const struct sockaddr *sa = request_client_address(r);
        uint64_t now = 0, retry_usec = 0;

        if (!limit)
                return 0;
        (void)sd_event_now(request_manager(r)->event, CLOCK_MONOTONIC, &now);
        int k = ratelimit_check(limit, sa, now, &retry_usec);
        if (ratelimit_overflow_notice(limit, now))
                log_warning("The rate limit of %s tracks as many source addresses as it may "
                            "(rate_limit_sources=%u): new sources share one budget until some go quiet.",
                            what, ratelimit_n_sources(limit));
        if (k >= 0)
                return 0;

        unsigned retry =
                MAX((unsigned)((retry_usec + 999999) / 1000000), 1u); /* whole seconds, rounded up */
        g_autofree char *source = ratelimit_source_name(sa);
        g_autofree char *allowed = describe(limit);
        request_set_retry_after(r, retry);
        g_set_error(error, NM_ERROR, NM_ERROR_TOO_MANY_REQUESTS,
                    "Too many %s from %s: at most %s (%s); retry in %u s", what, source, allowed, key,
                    retry);
        return -EBUSY;
}
