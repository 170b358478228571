/* Network interfaces over rtnetlink (libnl-route): links, addresses, routes and change monitoring. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include "link.h"
#include "log.h"
#include "macro.h"
#include "netlink-util.h"

static void nl_msg_freep(struct nl_msg **m)
{
        if (*m)
                nlmsg_free(*m);
}
#define _cleanup_nlmsg_ _cleanup_(nl_msg_freep)

static void rtnl_link_putp(struct rtnl_link **l)
{
        if (*l)
                rtnl_link_put(*l);
}
static void rtnl_addr_putp(struct rtnl_addr **a)
{
        if (*a)
                rtnl_addr_put(*a);
}
static void rtnl_route_putp(struct rtnl_route **r)
{
        if (*r)
                rtnl_route_put(*r);
}
static void nl_addr_putp(struct nl_addr **a)
{
        if (*a)
                nl_addr_put(*a);
}
static void nl_cache_freep(struct nl_cache **c)
{
        if (*c)
                nl_cache_free(*c);
}

/* Sends and waits, logging the kernel's explanation at debug level. */
static int request(struct nl_sock *rtnl, struct nl_msg *msg, const char *what, const char *ifname)
{
        g_autofree char *extack = NULL;
        int r = netlink_request(rtnl, msg, &extack);
        if (r < 0)
                log_debug_errno(r, "rtnetlink %s on \"%s\" failed: %m%s%s", what, ifname, extack ? ": " : "",
                                strempty(extack));
        return r;
}

int link_rtnl_open(struct nl_sock **ret)
{
        return netlink_socket_open(NETLINK_ROUTE, ret);
}

int link_get_ifindex(const char *ifname)
{
        unsigned idx;

        if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
                return -EINVAL;
        idx = if_nametoindex(ifname);
        if (idx == 0)
                return errno == ENODEV || errno == ENXIO ? -ENODEV : -errno;
        return (int)idx;
}

int link_get_kind(struct nl_sock *rtnl, const char *ifname, char **ret)
{
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        const char *kind;
        int r;

        r = rtnl_link_get_kernel(rtnl, 0, ifname, &l);
        if (r < 0) {
                r = netlink_errno_from_nlerr(r);
                return r == -ENOENT ? -ENODEV : r;
        }
        kind = rtnl_link_get_type(l);
        *ret = g_strdup(strempty(kind));
        return 0;
}

int link_create_wireguard(struct nl_sock *rtnl, const char *ifname)
{
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        _cleanup_nlmsg_ struct nl_msg *msg = NULL;
        int r;

        l = rtnl_link_alloc();
        if (!l)
                return -ENOMEM;
        rtnl_link_set_name(l, ifname);
        r = rtnl_link_set_type(l, "wireguard");
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        r = rtnl_link_build_add_request(l, NLM_F_CREATE | NLM_F_EXCL, &msg);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        return request(rtnl, msg, "create wireguard link", ifname);
}

int link_delete(struct nl_sock *rtnl, const char *ifname)
{
        _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
        _cleanup_nlmsg_ struct nl_msg *msg = NULL;
        int idx, r;

        idx = link_get_ifindex(ifname);
        if (idx < 0)
                return idx;
        l = rtnl_link_alloc();
        if (!l)
                return -ENOMEM;
        rtnl_link_set_ifindex(l, idx);
        r = rtnl_link_build_delete_request(l, &msg);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        return request(rtnl, msg, "delete link", ifname);
}

/* RTM_NEWLINK on an existing link, for the fields libnl-route would need the whole old link for. */
static int link_change(struct nl_sock *rtnl, const char *ifname, unsigned flags, unsigned change,
                       bool set_mtu, uint32_t mtu)
{
        _cleanup_nlmsg_ struct nl_msg *msg = NULL;
        struct ifinfomsg ifi = {};
        int idx;

        idx = link_get_ifindex(ifname);
        if (idx < 0)
                return idx;
        ifi.ifi_family = AF_UNSPEC;
        ifi.ifi_index = idx;
        ifi.ifi_flags = flags;
        ifi.ifi_change = change;

        msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
        if (!msg)
                return -ENOMEM;
        if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
                return -ENOMEM;
        if (set_mtu && nla_put_u32(msg, IFLA_MTU, mtu) < 0)
                return -ENOMEM;
        return request(rtnl, msg, set_mtu ? "set MTU" : "set link state", ifname);
}

int link_set_mtu(struct nl_sock *rtnl, const char *ifname, uint32_t mtu)
{
        if (mtu < 68 || mtu > 65535)
                return -EINVAL;
        return link_change(rtnl, ifname, 0, 0, true, mtu);
}

int link_set_up(struct nl_sock *rtnl, const char *ifname, bool up)
{
        return link_change(rtnl, ifname, up ? IFF_UP : 0, IFF_UP, false, 0);
}

static int prefix_to_nl_addr(const NmPrefix *p, bool canonical, struct nl_addr **ret)
{
        NmPrefix c = *p;
        struct nl_addr *a;

        if (p->family != AF_INET && p->family != AF_INET6)
                return -EAFNOSUPPORT;
        if (p->prefixlen > nm_family_bits(p->family))
                return -EINVAL;
        if (canonical)
                nm_prefix_canonicalize(&c);
        a = nl_addr_build(c.family, c.addr.bytes, c.family == AF_INET ? 4 : 16);
        if (!a)
                return -ENOMEM;
        nl_addr_set_prefixlen(a, c.prefixlen);
        *ret = a;
        return 0;
}

static int address_request(struct nl_sock *rtnl, const char *ifname, const NmPrefix *address, bool add)
{
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *local = NULL;
        _cleanup_nlmsg_ struct nl_msg *msg = NULL;
        int idx, r;

        idx = link_get_ifindex(ifname);
        if (idx < 0)
                return idx;
        r = prefix_to_nl_addr(address, false, &local);
        if (r < 0)
                return r;
        a = rtnl_addr_alloc();
        if (!a)
                return -ENOMEM;
        rtnl_addr_set_ifindex(a, idx);
        rtnl_addr_set_family(a, address->family);
        r = rtnl_addr_set_local(a, local);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        rtnl_addr_set_prefixlen(a, address->prefixlen);

        if (add)
                r = rtnl_addr_build_add_request(a, NLM_F_CREATE | NLM_F_EXCL, &msg);
        else
                r = rtnl_addr_build_delete_request(a, 0, &msg);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        r = request(rtnl, msg, add ? "add address" : "remove address", ifname);
        if (add && r == -EEXIST)
                return 0;
        return r;
}

int link_address_add(struct nl_sock *rtnl, const char *ifname, const NmPrefix *address)
{
        return address_request(rtnl, ifname, address, true);
}

int link_address_remove(struct nl_sock *rtnl, const char *ifname, const NmPrefix *address)
{
        return address_request(rtnl, ifname, address, false);
}

static int route_request(struct nl_sock *rtnl, const char *ifname, const NmPrefix *destination,
                         uint32_t table, uint32_t metric, bool add)
{
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *dst = NULL;
        _cleanup_nlmsg_ struct nl_msg *msg = NULL;
        struct rtnl_nexthop *nh;
        int idx, r;

        idx = link_get_ifindex(ifname);
        if (idx < 0)
                return idx;
        r = prefix_to_nl_addr(destination, true, &dst);
        if (r < 0)
                return r;
        rt = rtnl_route_alloc();
        if (!rt)
                return -ENOMEM;
        rtnl_route_set_family(rt, (uint8_t)destination->family);
        r = rtnl_route_set_dst(rt, dst);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        rtnl_route_set_table(rt, table ? table : RT_TABLE_MAIN);
        rtnl_route_set_type(rt, RTN_UNICAST);
        rtnl_route_set_scope(rt, RT_SCOPE_LINK);
        rtnl_route_set_protocol(rt, RTPROT_STATIC);
        if (metric)
                rtnl_route_set_priority(rt, metric);
        nh = rtnl_route_nh_alloc();
        if (!nh)
                return -ENOMEM;
        rtnl_route_nh_set_ifindex(nh, idx);
        rtnl_route_add_nexthop(rt, nh); /* the route owns nh now */

        if (add)
                r = rtnl_route_build_add_request(rt, NLM_F_CREATE | NLM_F_EXCL, &msg);
        else
                r = rtnl_route_build_del_request(rt, 0, &msg);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        r = request(rtnl, msg, add ? "add route" : "remove route", ifname);
        if (add && r == -EEXIST)
                return 0;
        return r;
}

int link_route_add(struct nl_sock *rtnl, const char *ifname, const NmPrefix *destination, uint32_t table,
                   uint32_t metric)
{
        return route_request(rtnl, ifname, destination, table, metric, true);
}

int link_route_remove(struct nl_sock *rtnl, const char *ifname, const NmPrefix *destination, uint32_t table,
                      uint32_t metric)
{
        return route_request(rtnl, ifname, destination, table, metric, false);
}

static bool nl_addr_to_prefix(struct nl_addr *a, NmPrefix *ret)
{
        int family;
        unsigned len;

        if (!a)
                return false;
        family = nl_addr_get_family(a);
        len = nl_addr_get_len(a);
        if (!((family == AF_INET && len == 4) || (family == AF_INET6 && len == 16)))
                return false;
        *ret = (NmPrefix){.family = family};
        memcpy(ret->addr.bytes, nl_addr_get_binary_addr(a), len);
        ret->prefixlen = (uint8_t)MIN(nl_addr_get_prefixlen(a), nm_family_bits(family));
        return true;
}

int link_list_host_addresses(struct nl_sock *rtnl, const char *exclude_prefix, GArray **ret)
{
        _cleanup_(nl_cache_freep) struct nl_cache *links = NULL, *addrs = NULL;
        g_autoptr(GArray) v4 = g_array_new(FALSE, TRUE, sizeof(LinkAddress));
        g_autoptr(GArray) v6 = g_array_new(FALSE, TRUE, sizeof(LinkAddress));
        int r;

        r = rtnl_link_alloc_cache(rtnl, AF_UNSPEC, &links);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        r = rtnl_addr_alloc_cache(rtnl, &addrs);
        if (r < 0)
                return netlink_errno_from_nlerr(r);

        for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
                struct rtnl_addr *a = (struct rtnl_addr *)o;
                _cleanup_(rtnl_link_putp) struct rtnl_link *l = NULL;
                LinkAddress la = {};
                const char *name;
                unsigned flags;

                la.ifindex = rtnl_addr_get_ifindex(a);
                l = rtnl_link_get(links, la.ifindex);
                if (!l)
                        continue;
                flags = rtnl_link_get_flags(l);
                if (!(flags & IFF_UP) || (flags & IFF_LOOPBACK))
                        continue;
                name = rtnl_link_get_name(l);
                if (!name || (exclude_prefix && g_str_has_prefix(name, exclude_prefix)))
                        continue;
                if (rtnl_addr_get_scope(a) >= RT_SCOPE_LINK)
                        continue;
                if (rtnl_addr_get_flags(a) & (IFA_F_TENTATIVE | IFA_F_DEPRECATED | IFA_F_DADFAILED))
                        continue;
                if (!nl_addr_to_prefix(rtnl_addr_get_local(a), &la.address))
                        continue;
                la.address.prefixlen = (uint8_t)MIN((unsigned)rtnl_addr_get_prefixlen(a),
                                                    nm_family_bits(la.address.family));
                if (la.address.family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&la.address.addr.in6))
                        continue;
                g_strlcpy(la.ifname, name, sizeof(la.ifname));
                g_array_append_val(la.address.family == AF_INET ? v4 : v6, la);
        }

        g_array_append_vals(v4, v6->data, v6->len);
        *ret = TAKE_PTR(v4);
        return 0;
}

struct LinkMonitor {
        struct nl_sock *sk;
        struct nl_cb *cb;
        sd_event_source *io;
        LinkMonitorHandler handler;
        void *userdata;
};

int link_event_from_netlink(const struct nlmsghdr *h, LinkEvent *ret)
{
        LinkEvent ev = {};

        switch (h->nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK: {
                struct nlattr *tb[IFLA_MAX + 1];
                struct ifinfomsg *ifi;

                if (nlmsg_parse((struct nlmsghdr *)h, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
                        return 0;
                ifi = nlmsg_data(h);
                ev.type = h->nlmsg_type == RTM_NEWLINK ? LINK_EVENT_LINK_NEW : LINK_EVENT_LINK_DEL;
                ev.ifindex = ifi->ifi_index;
                ev.flags = ifi->ifi_flags;
                /* Bounded by the attribute: a name without its NUL must not be read past. */
                if (tb[IFLA_IFNAME])
                        nla_strlcpy(ev.ifname, tb[IFLA_IFNAME], sizeof(ev.ifname));
                break;
        }
        case RTM_NEWADDR:
        case RTM_DELADDR: {
                struct nlattr *tb[IFA_MAX + 1];
                struct ifaddrmsg *ifa;
                struct nlattr *a;
                size_t len;

                if (nlmsg_parse((struct nlmsghdr *)h, sizeof(struct ifaddrmsg), tb, IFA_MAX, NULL) < 0)
                        return 0;
                ifa = nlmsg_data(h);
                if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
                        return 0;
                /* IPv4 point-to-point addresses put the peer in IFA_ADDRESS; IFA_LOCAL is ours. */
                a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
                len = ifa->ifa_family == AF_INET ? 4 : 16;
                if (!a || (size_t)nla_len(a) != len)
                        return 0;
                ev.type = h->nlmsg_type == RTM_NEWADDR ? LINK_EVENT_ADDRESS_NEW : LINK_EVENT_ADDRESS_DEL;
                ev.ifindex = (int)ifa->ifa_index;
                ev.address.family = ifa->ifa_family;
                memcpy(ev.address.addr.bytes, nla_data(a), len);
                ev.address.prefixlen = (uint8_t)MIN(ifa->ifa_prefixlen, nm_family_bits(ifa->ifa_family));
                break;
        }
        default:
                return 0;
        }
        *ret = ev;
        return 1;
}

static int monitor_parse(struct nl_msg *msg, void *arg)
{
        LinkMonitor *m = arg;
        LinkEvent ev;

        if (link_event_from_netlink(nlmsg_hdr(msg), &ev) <= 0)
                return NL_SKIP;
        m->handler(m, &ev, m->userdata);
        return NL_OK;
}

static int monitor_no_seq_check(struct nl_msg *msg, void *arg)
{
        return NL_OK;
}

static int monitor_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        LinkMonitor *m = userdata;

        for (;;) {
                int r = nl_recvmsgs(m->sk, m->cb);
                if (r > 0)
                        continue;
                if (r == 0 || r == -NLE_AGAIN)
                        break;
                if (r == -NLE_NOMEM) {
                        /* ENOBUFS: the kernel dropped notifications. */
                        LinkEvent ev = {.type = LINK_EVENT_RESYNC};
                        log_debug("rtnetlink monitor overflowed; asking for a resync");
                        m->handler(m, &ev, m->userdata);
                        continue;
                }
                log_debug_errno(netlink_errno_from_nlerr(r), "rtnetlink monitor read failed: %m");
                break;
        }
        return 0;
}

int link_monitor_new(sd_event *event, LinkMonitorHandler handler, void *userdata, LinkMonitor **ret)
{
        g_autoptr(LinkMonitor) m = NULL;
        int r;

        if (!event || !handler || !ret)
                return -EINVAL;
        m = g_new0(LinkMonitor, 1);
        m->handler = handler;
        m->userdata = userdata;

        m->sk = nl_socket_alloc();
        if (!m->sk)
                return -ENOMEM;
        nl_socket_disable_seq_check(m->sk);
        r = nl_connect(m->sk, NETLINK_ROUTE);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        r = nl_socket_add_memberships(m->sk, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        r = nl_socket_set_nonblocking(m->sk);
        if (r < 0)
                return netlink_errno_from_nlerr(r);
        (void)nl_socket_set_buffer_size(m->sk, 1 << 20, 0);

        m->cb = nl_cb_alloc(NL_CB_DEFAULT);
        if (!m->cb)
                return -ENOMEM;
        nl_cb_set(m->cb, NL_CB_VALID, NL_CB_CUSTOM, monitor_parse, m);
        /* Notifications carry no sequence numbers of ours; the socket's own "no check" setting
         * lives in its default callbacks, not in this set. */
        nl_cb_set(m->cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, monitor_no_seq_check, NULL);

        r = sd_event_add_io(event, &m->io, nl_socket_get_fd(m->sk), EPOLLIN, monitor_io, m);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(m->io, "rtnl-monitor");
        *ret = TAKE_PTR(m);
        return 0;
}

LinkMonitor *link_monitor_free(LinkMonitor *m)
{
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->io);
        if (m->cb)
                nl_cb_put(m->cb);
        if (m->sk)
                nl_socket_free(m->sk);
        g_free(m);
        return NULL;
}
