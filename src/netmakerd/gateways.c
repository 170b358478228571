/* Range checks for egress gateways and external clients. */
#include <errno.h>
#include <string.h>

#include "cidr.h"
#include "gateways.h"
#include "macro.h"
#include "names.h"
#include "nm-error.h"

static int parse_one(const char *member, const char *text, NmPrefix *ret, GError **error)
{
        g_autoptr(GError) e = NULL;
        g_autofree char *v = nm_shown(text);
        NmPrefix p;

        if (nm_prefix_parse(text, &p, &e) < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Invalid %s \"%s\": %s", member, v,
                            e ? e->message : "expected a CIDR like 192.168.50.0/24");
                return -EINVAL;
        }
        if (!nm_prefix_is_canonical(&p)) {
                NmPrefix c = p;
                nm_prefix_canonicalize(&c);
                g_autofree char *canon = nm_prefix_to_string(&c);
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": host bits are set (did you mean %s?)", member, v, canon);
                return -EINVAL;
        }
        if (p.prefixlen == 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                            "Invalid %s \"%s\": the whole address space is what an internet gateway offers "
                            "(PUT /nodes/{id}/internet-gateway), not a range",
                            member, v);
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

static int overlap_error(GError **error, const char *member, const NmPrefix *p, const char *what)
{
        g_autofree char *mine = nm_prefix_to_string(p);
        g_set_error(error, NM_ERROR, NM_ERROR_CONFLICT, "The %s %s overlaps %s", member, mine, what);
        return -EEXIST;
}

/* Checks `p` against the ranges in `others`, described as `owner` when one overlaps. */
static int check_against(const char *member, const NmPrefix *p, char **others, const char *owner,
                         GError **error)
{
        for (char **o = others; o && *o; o++) {
                NmPrefix q;
                if (nm_prefix_parse(*o, &q, NULL) < 0 || q.family != p->family || !nm_prefix_overlaps(p, &q))
                        continue;
                g_autofree char *what = g_strdup_printf("%s (%s)", owner, *o);
                return overlap_error(error, member, p, what);
        }
        return 0;
}

int gateways_check_ranges(const PeerView *v, const char *member, char **ranges, const char *self_node,
                          const char *self_client, char ***ret, GError **error)
{
        guint n = ranges ? g_strv_length(ranges) : 0;
        g_autofree NmPrefix *parsed = g_new0(NmPrefix, MAX(n, 1u));
        int r;

        if (n > GATEWAY_MAX_RANGES) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Too many %ss (%u): at most %u",
                            member, n, GATEWAY_MAX_RANGES);
                return -EINVAL;
        }
        for (guint i = 0; i < n; i++) {
                r = parse_one(member, ranges[i], &parsed[i], error);
                if (r < 0)
                        return r;
                for (guint j = 0; j < i; j++)
                        if (parsed[j].family == parsed[i].family &&
                            nm_prefix_overlaps(&parsed[i], &parsed[j])) {
                                g_autofree char *a = nm_prefix_to_string(&parsed[j]);
                                g_autofree char *b = nm_prefix_to_string(&parsed[i]);
                                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT,
                                            "The %ss %s and %s overlap: give each range once", member, a, b);
                                return -EINVAL;
                        }
        }

        for (guint i = 0; i < n; i++) {
                const NmPrefix *p = &parsed[i];
                char *own[] = {v->network->ipv4_range, v->network->ipv6_range, NULL};
                g_autofree char *net = g_strdup_printf("the range of network \"%s\"", v->network->name);
                r = check_against(member, p, own[0] ? own : own + 1, net, error);
                if (r < 0)
                        return r;
                for (guint k = 0; k < v->members->len; k++) {
                        const Member *m = v->members->pdata[k];
                        if (streq0(m->node->id, self_node))
                                continue;
                        g_autofree char *owner = g_strdup_printf("an egress range of node %s (%s)",
                                                                 m->node->id, m->host->name);
                        r = check_against(member, p, m->node->roles.egress_ranges, owner, error);
                        if (r < 0)
                                return r;
                }
                for (guint k = 0; v->ext_clients && k < v->ext_clients->len; k++) {
                        const ExtClient *c = v->ext_clients->pdata[k];
                        if (streq0(c->id, self_client))
                                continue;
                        g_autofree char *owner =
                                g_strdup_printf("an extra allowed IP of external client \"%s\"", c->name);
                        r = check_against(member, p, c->extra_allowed_ips, owner, error);
                        if (r < 0)
                                return r;
                }
        }

        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        for (guint i = 0; i < n; i++) {
                g_autofree char *c = nm_prefix_to_string(&parsed[i]);
                g_strv_builder_add(b, c);
        }
        *ret = g_strv_builder_end(b);
        return 0;
}
