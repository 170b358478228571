/* The host's upstream resolvers for the forwarding responder (see dns-upstream.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "dns-upstream.h"
#include "macro.h"

int dns_upstream_read(const char *path, GArray **ret)
{
        g_autofree char *text = NULL;
        g_autoptr(GError) e = NULL;

        if (!g_file_get_contents(path, &text, NULL, &e))
                return e->domain == G_FILE_ERROR && e->code == G_FILE_ERROR_NOENT ? -ENOENT : -EIO;
        GArray *a = g_array_new(false, true, sizeof(struct sockaddr_storage));
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) w = g_strsplit_set(g_strstrip(*l), " \t", -1);
                unsigned n = 0;
                const char *words[2] = {};
                for (char **p = w; *p && n < 2; p++)
                        if (**p)
                                words[n++] = *p;
                if (n < 2 || !streq0(words[0], "nameserver"))
                        continue;
                struct sockaddr_storage ss = {};
                struct sockaddr_in *in = (struct sockaddr_in *)&ss;
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
                if (inet_pton(AF_INET, words[1], &in->sin_addr) == 1) {
                        in->sin_family = AF_INET;
                        in->sin_port = htons(53);
                } else if (inet_pton(AF_INET6, words[1], &in6->sin6_addr) == 1) {
                        in6->sin6_family = AF_INET6;
                        in6->sin6_port = htons(53);
                } else
                        continue; /* a zone index, or not an address */
                g_array_append_val(a, ss);
        }
        *ret = a;
        return 0;
}

static bool is_stub(const struct sockaddr_storage *ss)
{
        if (ss->ss_family != AF_INET)
                return false;
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return a == 0x7f000035u || a == 0x7f000036u; /* 127.0.0.53, 127.0.0.54 */
}

static bool usable(const struct sockaddr_storage *ss, const GArray *excluded)
{
        NmInAddr addr = {};
        int family = ss->ss_family;

        if (family == AF_INET) {
                addr.in = ((const struct sockaddr_in *)ss)->sin_addr;
                if (addr.in.s_addr == htonl(INADDR_ANY))
                        return false;
        } else {
                addr.in6 = ((const struct sockaddr_in6 *)ss)->sin6_addr;
                if (IN6_IS_ADDR_UNSPECIFIED(&addr.in6))
                        return false;
        }
        if (is_stub(ss))
                return false;
        for (guint i = 0; excluded && i < excluded->len; i++) {
                const NmPrefix *p = &g_array_index(excluded, NmPrefix, i);
                if (p->family == family && nm_prefix_contains(p, family, &addr))
                        return false;
        }
        return true;
}

GArray *dns_upstream_choose(const char *resolv_conf, const char *resolved_resolv_conf,
                            const GArray *excluded)
{
        g_autoptr(GArray) etc = NULL, chosen = NULL;
        GArray *out = g_array_new(false, true, sizeof(struct sockaddr_storage));
        bool stub = false;

        if (dns_upstream_read(resolv_conf, &etc) < 0)
                etc = g_array_new(false, true, sizeof(struct sockaddr_storage));
        for (guint i = 0; i < etc->len; i++)
                stub = stub || is_stub(&g_array_index(etc, struct sockaddr_storage, i));
        /* resolved's stub: ask what resolved asks, not resolved (its stub would route our own
         * zone's names back to us, and every other name to the same servers anyway). */
        if (stub && resolved_resolv_conf && dns_upstream_read(resolved_resolv_conf, &chosen) >= 0)
                ;
        else
                chosen = g_steal_pointer(&etc);
        for (guint i = 0; i < chosen->len && out->len < DNS_UPSTREAM_MAX; i++) {
                const struct sockaddr_storage *ss = &g_array_index(chosen, struct sockaddr_storage, i);
                bool dup = false;
                for (guint j = 0; j < out->len; j++)
                        dup = dup ||
                              memcmp(&g_array_index(out, struct sockaddr_storage, j), ss, sizeof(*ss)) == 0;
                if (!dup && usable(ss, excluded))
                        g_array_append_val(out, *ss);
        }
        return out;
}

char *dns_upstream_to_string(const struct sockaddr_storage *ss)
{
        char buf[INET6_ADDRSTRLEN] = "?";
        if (ss->ss_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, sizeof(buf));
        else if (ss->ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, sizeof(buf));
        return g_strdup(buf);
}
