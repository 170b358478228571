/* Policy rules (fib rules) and route dumps over rtnetlink, with the kernel's errors kept. */
#include <errno.h>
#include <string.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "macro.h"
#include "netlink-util.h"
#include "routing.h"

static void nl_msg_freep(struct nl_msg **m)
{
        if (*m)
                nlmsg_free(*m);
}
#define _cleanup_nlmsg_ _cleanup_(nl_msg_freep)

void routing_rule_main_suppress(RoutingRule *ret, int family)
{
        *ret = (RoutingRule){
                .family = family,
                .priority = ROUTING_PRIORITY_MAIN,
                .table = RT_TABLE_MAIN,
                .suppress_prefixlength = 0,
        };
}

void routing_rule_not_fwmark(RoutingRule *ret, int family, uint32_t table)
{
        *ret = (RoutingRule){
                .family = family,
                .priority = ROUTING_PRIORITY_TABLE,
                .table = table,
                .fwmark = table,
                .invert = true,
                .suppress_prefixlength = -1,
        };
}

bool routing_rule_equal(const RoutingRule *a, const RoutingRule *b)
{
        return a->family == b->family && a->priority == b->priority && a->table == b->table &&
               a->fwmark == b->fwmark && a->invert == b->invert &&
               a->suppress_prefixlength == b->suppress_prefixlength;
}

bool routing_rule_is_ours(const RoutingRule *r)
{
        if (r->priority == ROUTING_PRIORITY_MAIN)
                return r->table == RT_TABLE_MAIN && r->suppress_prefixlength == 0 && !r->invert;
        if (r->priority == ROUTING_PRIORITY_TABLE)
                return routing_table_is_ours(r->table);
        return false;
}

char *routing_rule_to_string(const RoutingRule *r)
{
        g_autofree char *table =
                r->table == RT_TABLE_MAIN ? g_strdup("main") : g_strdup_printf("%u", r->table);
        g_autofree char *mark =
                r->fwmark ? g_strdup_printf("%sfwmark 0x%x ", r->invert ? "not " : "", r->fwmark)
                          : g_strdup("");
        g_autofree char *sup = r->suppress_prefixlength >= 0 ? g_strdup_printf(" suppress_prefixlength %d",
                                                                               r->suppress_prefixlength)
                                                             : g_strdup("");
        return g_strdup_printf("%s priority %u %slookup %s%s", r->family == AF_INET6 ? "ipv6" : "ipv4",
                               r->priority, mark, table, sup);
}

static int rule_request(struct nl_sock *rtnl, const RoutingRule *rule, bool add)
{
        _cleanup_nlmsg_ struct nl_msg *msg = NULL;
        struct fib_rule_hdr frh = {
                .family = (uint8_t)rule->family,
                .table = rule->table < 256 ? (uint8_t)rule->table : RT_TABLE_UNSPEC,
                .action = FR_ACT_TO_TBL,
                .flags = rule->invert ? FIB_RULE_INVERT : 0,
        };

        msg = nlmsg_alloc_simple(add ? RTM_NEWRULE : RTM_DELRULE, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
        if (!msg)
                return -ENOMEM;
        if (nlmsg_append(msg, &frh, sizeof(frh), NLMSG_ALIGNTO) < 0 ||
            nla_put_u32(msg, FRA_PRIORITY, rule->priority) < 0 ||
            nla_put_u32(msg, FRA_TABLE, rule->table) < 0)
                return -ENOMEM;
        if (rule->fwmark && (nla_put_u32(msg, FRA_FWMARK, rule->fwmark) < 0 ||
                             nla_put_u32(msg, FRA_FWMASK, 0xffffffffu) < 0))
                return -ENOMEM;
        if (rule->suppress_prefixlength >= 0 &&
            nla_put_u32(msg, FRA_SUPPRESS_PREFIXLEN, (uint32_t)rule->suppress_prefixlength) < 0)
                return -ENOMEM;
        if (add && nla_put_u8(msg, FRA_PROTOCOL, RTPROT_STATIC) < 0)
                return -ENOMEM;
        return netlink_request(rtnl, msg, NULL);
}

int routing_rule_add(struct nl_sock *rtnl, const RoutingRule *rule)
{
        int r = rule_request(rtnl, rule, true);
        return r == -EEXIST ? 0 : r;
}

int routing_rule_remove(struct nl_sock *rtnl, const RoutingRule *rule)
{
        return rule_request(rtnl, rule, false);
}

/* The attributes read as numbers must hold one: without a policy libnl checks no length, and
 * nla_get_u32() of a shorter attribute reads past it (past the message, at its end). */
static const struct nla_policy rule_policy[FRA_MAX + 1] = {
        [FRA_TABLE] = {.type = NLA_U32},
        [FRA_PRIORITY] = {.type = NLA_U32},
        [FRA_FWMARK] = {.type = NLA_U32},
        [FRA_SUPPRESS_PREFIXLEN] = {.type = NLA_U32},
};

static const struct nla_policy route_policy[RTA_MAX + 1] = {
        [RTA_OIF] = {.type = NLA_U32},
        [RTA_TABLE] = {.type = NLA_U32},
};

int routing_rule_from_netlink(const struct nlmsghdr *nlh, RoutingRule *ret)
{
        struct nlattr *tb[FRA_MAX + 1];
        struct fib_rule_hdr *frh;
        RoutingRule rule = {.suppress_prefixlength = -1};

        if (nlh->nlmsg_type != RTM_NEWRULE ||
            nlmsg_parse((struct nlmsghdr *)nlh, sizeof(*frh), tb, FRA_MAX, rule_policy) < 0)
                return 0;
        frh = nlmsg_data(nlh);
        if (frh->action != FR_ACT_TO_TBL)
                return 0;
        rule.family = frh->family;
        rule.invert = frh->flags & FIB_RULE_INVERT;
        rule.table = tb[FRA_TABLE] ? nla_get_u32(tb[FRA_TABLE]) : frh->table;
        rule.priority = tb[FRA_PRIORITY] ? nla_get_u32(tb[FRA_PRIORITY]) : 0;
        rule.fwmark = tb[FRA_FWMARK] ? nla_get_u32(tb[FRA_FWMARK]) : 0;
        if (tb[FRA_SUPPRESS_PREFIXLEN]) {
                uint32_t v = nla_get_u32(tb[FRA_SUPPRESS_PREFIXLEN]);
                /* The kernel reports "none" as -1 (all bits set). */
                rule.suppress_prefixlength = v > 128 ? -1 : (int)v;
        }
        *ret = rule;
        return 1;
}

static int parse_rule(struct nl_msg *m, void *userdata)
{
        GArray *rules = userdata;
        RoutingRule rule;

        if (routing_rule_from_netlink(nlmsg_hdr(m), &rule) > 0)
                g_array_append_val(rules, rule);
        return 0;
}

int routing_list_rules(struct nl_sock *rtnl, GArray **ret)
{
        static const int families[] = {AF_INET, AF_INET6};
        g_autoptr(GArray) rules = g_array_new(false, true, sizeof(RoutingRule));

        for (size_t i = 0; i < G_N_ELEMENTS(families); i++) {
                _cleanup_nlmsg_ struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETRULE, 0);
                struct fib_rule_hdr frh = {.family = (uint8_t)families[i]};
                int r;

                if (!msg || nlmsg_append(msg, &frh, sizeof(frh), NLMSG_ALIGNTO) < 0)
                        return -ENOMEM;
                r = netlink_dump(rtnl, msg, parse_rule, rules, NULL);
                /* A kernel without IPv6 has no IPv6 rules. */
                if (r == -EAFNOSUPPORT && families[i] == AF_INET6)
                        continue;
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(rules);
        return 0;
}

typedef struct RouteDump {
        int ifindex;
        GArray *routes;
} RouteDump;

int routing_route_from_netlink(const struct nlmsghdr *nlh, int ifindex, RoutingRoute *ret)
{
        struct nlattr *tb[RTA_MAX + 1];
        struct rtmsg *rtm;
        RoutingRoute rt = {};
        size_t len;

        if (nlh->nlmsg_type != RTM_NEWROUTE ||
            nlmsg_parse((struct nlmsghdr *)nlh, sizeof(*rtm), tb, RTA_MAX, route_policy) < 0)
                return 0;
        rtm = nlmsg_data(nlh);
        if (rtm->rtm_type != RTN_UNICAST || rtm->rtm_protocol != RTPROT_STATIC ||
            (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6))
                return 0;
        if (!tb[RTA_OIF] || (int)nla_get_u32(tb[RTA_OIF]) != ifindex)
                return 0;
        len = rtm->rtm_family == AF_INET ? 4 : 16;
        rt.destination.family = rtm->rtm_family;
        rt.destination.prefixlen = rtm->rtm_dst_len;
        if (rt.destination.prefixlen > nm_family_bits(rt.destination.family))
                return 0;
        if (tb[RTA_DST]) {
                if (nla_len(tb[RTA_DST]) != (int)len)
                        return 0;
                memcpy(rt.destination.addr.bytes, nla_data(tb[RTA_DST]), len);
        }
        nm_prefix_canonicalize(&rt.destination);
        rt.table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
        *ret = rt;
        return 1;
}

static int parse_route(struct nl_msg *m, void *userdata)
{
        RouteDump *d = userdata;
        RoutingRoute rt;

        if (routing_route_from_netlink(nlmsg_hdr(m), d->ifindex, &rt) > 0)
                g_array_append_val(d->routes, rt);
        return 0;
}

int routing_list_link_routes(struct nl_sock *rtnl, int ifindex, GArray **ret)
{
        static const int families[] = {AF_INET, AF_INET6};
        g_autoptr(GArray) routes = g_array_new(false, true, sizeof(RoutingRoute));
        RouteDump d = {.ifindex = ifindex, .routes = routes};

        for (size_t i = 0; i < G_N_ELEMENTS(families); i++) {
                _cleanup_nlmsg_ struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETROUTE, 0);
                /* RT_TABLE_UNSPEC: every table, not only main. */
                struct rtmsg rtm = {.rtm_family = (uint8_t)families[i], .rtm_table = RT_TABLE_UNSPEC};
                int r;

                if (!msg || nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0)
                        return -ENOMEM;
                r = netlink_dump(rtnl, msg, parse_route, &d, NULL);
                if (r == -EAFNOSUPPORT && families[i] == AF_INET6)
                        continue;
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(routes);
        return 0;
}
