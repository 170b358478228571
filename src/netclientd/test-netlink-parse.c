/* Proves that what netclientd reads from netlink by hand stays inside the message, with messages
 * the kernel would not send but a parser must survive (found by tests/fuzz/fuzz-netlink.c): each
 * message is placed at the very end of a mapping that an inaccessible page follows, so a read past
 * it faults, also inside GLib or libnl. A link or WireGuard device name without its NUL is cut at
 * the attribute's end; a rule or route whose number attributes are too short is skipped; well-formed
 * messages still read as before. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/wireguard.h>
#include <netlink/msg.h>

#include "link.h"
#include "macro.h"
#include "netlink-util.h"
#include "routing.h"
#include "wg-netlink.h"

typedef struct Guarded {
        uint8_t *map;
        size_t size; /* the accessible part */
} Guarded;

static Guarded guarded;

/* A copy of the message that ends where the inaccessible page begins (its length is a multiple of
 * 4 in every message here, so it is aligned). */
static const struct nlmsghdr *at_guard(const void *msg, size_t len)
{
        g_assert_cmpuint(len % 4, ==, 0);
        g_assert_cmpuint(len, <=, guarded.size);
        uint8_t *at = guarded.map + guarded.size - len;
        memcpy(at, msg, len);
        return (const struct nlmsghdr *)at;
}

/* A message of `type` with a fixed header and attributes, built the way the kernel lays them out. */
typedef struct Builder {
        uint8_t buf[512];
        size_t len;
} Builder;

static void b_start(Builder *b, uint16_t type, const void *hdr, size_t hdr_len)
{
        struct nlmsghdr h = {.nlmsg_type = type};
        memset(b, 0, sizeof(*b));
        memcpy(b->buf, &h, sizeof(h));
        memcpy(b->buf + NLMSG_HDRLEN, hdr, hdr_len);
        b->len = NLMSG_HDRLEN + NLMSG_ALIGN(hdr_len);
}

static void b_attr(Builder *b, uint16_t type, const void *data, size_t len)
{
        struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + len), .nla_type = type};
        memcpy(b->buf + b->len, &a, sizeof(a));
        if (len > 0)
                memcpy(b->buf + b->len + NLA_HDRLEN, data, len);
        b->len += NLA_ALIGN(NLA_HDRLEN + len);
}

static size_t b_end(Builder *b)
{
        ((struct nlmsghdr *)b->buf)->nlmsg_len = (uint32_t)b->len;
        return b->len;
}

static void test_link_name_without_nul(void)
{
        struct ifinfomsg ifi = {.ifi_index = 7, .ifi_flags = 1};
        LinkEvent ev;
        Builder b;

        /* "nm-offic": 8 bytes, no NUL, and nothing after it in the message. */
        b_start(&b, RTM_NEWLINK, &ifi, sizeof(ifi));
        b_attr(&b, IFLA_IFNAME, "nm-offic", 8);
        const struct nlmsghdr *h = at_guard(b.buf, b_end(&b));
        g_assert_cmpint(link_event_from_netlink(h, &ev), ==, 1);
        g_assert_cmpint(ev.type, ==, LINK_EVENT_LINK_NEW);
        g_assert_cmpint(ev.ifindex, ==, 7);
        g_assert_cmpstr(ev.ifname, ==, "nm-offic");

        /* Longer than a name may be: cut to IFNAMSIZ - 1. */
        b_start(&b, RTM_NEWLINK, &ifi, sizeof(ifi));
        b_attr(&b, IFLA_IFNAME, "abcdefghijklmnopqrst", 20);
        h = at_guard(b.buf, b_end(&b));
        g_assert_cmpint(link_event_from_netlink(h, &ev), ==, 1);
        g_assert_cmpstr(ev.ifname, ==, "abcdefghijklmno");

        /* As the kernel sends it. */
        b_start(&b, RTM_DELLINK, &ifi, sizeof(ifi));
        b_attr(&b, IFLA_IFNAME, "eth0", 5);
        h = at_guard(b.buf, b_end(&b));
        g_assert_cmpint(link_event_from_netlink(h, &ev), ==, 1);
        g_assert_cmpint(ev.type, ==, LINK_EVENT_LINK_DEL);
        g_assert_cmpstr(ev.ifname, ==, "eth0");
}

static void test_wireguard_name_without_nul(void)
{
        struct genlmsghdr g = {.cmd = WG_CMD_GET_DEVICE, .version = 1};
        g_autoptr(WgDevice) d = wg_device_new("x");
        g_autoptr(GHashTable) keys = wg_peer_key_table_new();
        uint32_t ifindex = 9;
        Builder b;

        b_start(&b, 0x1c, &g, sizeof(g));
        b_attr(&b, WGDEVICE_A_IFINDEX, &ifindex, sizeof(ifindex));
        b_attr(&b, WGDEVICE_A_IFNAME, "nm-offic", 8);
        g_assert_cmpint(wg_netlink_parse_device(at_guard(b.buf, b_end(&b)), d, keys), ==, 0);
        g_assert_cmpstr(d->ifname, ==, "nm-offic");
        g_assert_cmpint(d->ifindex, ==, 9);
}

static void test_short_numbers(void)
{
        struct fib_rule_hdr frh = {.family = AF_INET, .table = RT_TABLE_MAIN, .action = FR_ACT_TO_TBL};
        struct rtmsg rtm = {.rtm_family = AF_INET,
                            .rtm_dst_len = 24,
                            .rtm_table = RT_TABLE_MAIN,
                            .rtm_protocol = RTPROT_STATIC,
                            .rtm_type = RTN_UNICAST};
        uint32_t prio = 32700, oif = 7, table = 51820;
        struct in_addr dst;
        RoutingRule rule;
        RoutingRoute route;
        Builder b;

        inet_pton(AF_INET, "10.99.0.0", &dst);

        /* An empty FRA_TABLE last: skipped, not read past. */
        b_start(&b, RTM_NEWRULE, &frh, sizeof(frh));
        b_attr(&b, FRA_PRIORITY, &prio, sizeof(prio));
        b_attr(&b, FRA_TABLE, NULL, 0);
        g_assert_cmpint(routing_rule_from_netlink(at_guard(b.buf, b_end(&b)), &rule), ==, 0);
        /* Two bytes of priority: the same. */
        b_start(&b, RTM_NEWRULE, &frh, sizeof(frh));
        b_attr(&b, FRA_PRIORITY, &prio, 2);
        g_assert_cmpint(routing_rule_from_netlink(at_guard(b.buf, b_end(&b)), &rule), ==, 0);
        /* Well formed. */
        b_start(&b, RTM_NEWRULE, &frh, sizeof(frh));
        b_attr(&b, FRA_PRIORITY, &prio, sizeof(prio));
        b_attr(&b, FRA_TABLE, &table, sizeof(table));
        g_assert_cmpint(routing_rule_from_netlink(at_guard(b.buf, b_end(&b)), &rule), ==, 1);
        g_assert_cmpuint(rule.priority, ==, 32700);
        g_assert_cmpuint(rule.table, ==, 51820);

        /* An empty RTA_OIF last, then an empty RTA_TABLE. */
        b_start(&b, RTM_NEWROUTE, &rtm, sizeof(rtm));
        b_attr(&b, RTA_DST, &dst, sizeof(dst));
        b_attr(&b, RTA_OIF, NULL, 0);
        g_assert_cmpint(routing_route_from_netlink(at_guard(b.buf, b_end(&b)), 7, &route), ==, 0);
        b_start(&b, RTM_NEWROUTE, &rtm, sizeof(rtm));
        b_attr(&b, RTA_DST, &dst, sizeof(dst));
        b_attr(&b, RTA_OIF, &oif, sizeof(oif));
        b_attr(&b, RTA_TABLE, NULL, 0);
        g_assert_cmpint(routing_route_from_netlink(at_guard(b.buf, b_end(&b)), 7, &route), ==, 0);
        /* Well formed. */
        b_start(&b, RTM_NEWROUTE, &rtm, sizeof(rtm));
        b_attr(&b, RTA_DST, &dst, sizeof(dst));
        b_attr(&b, RTA_OIF, &oif, sizeof(oif));
        b_attr(&b, RTA_TABLE, &table, sizeof(table));
        g_assert_cmpint(routing_route_from_netlink(at_guard(b.buf, b_end(&b)), 7, &route), ==, 1);
        g_assert_cmpuint(route.table, ==, 51820);
        g_assert_cmpuint(route.destination.prefixlen, ==, 24);
}

static void test_extack(void)
{
        struct {
                int error;
                struct nlmsghdr msg;
        } e = {.error = -22, .msg = {.nlmsg_len = 36}};
        Builder b;

        /* The request's header only (CAPPED), then a message without its NUL. */
        b_start(&b, NLMSG_ERROR, &e, sizeof(e));
        ((struct nlmsghdr *)b.buf)->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
        b_attr(&b, NLMSGERR_ATTR_MSG, "Invalid attribute", 16);
        g_autofree char *text = netlink_error_extack(at_guard(b.buf, b_end(&b)));
        g_assert_cmpstr(text, ==, "Invalid attribut");

        /* Not capped: the request (36 bytes) would follow; it is not there, so there is nothing. */
        b_start(&b, NLMSG_ERROR, &e, sizeof(e));
        ((struct nlmsghdr *)b.buf)->nlmsg_flags = NLM_F_ACK_TLVS;
        g_assert_null(netlink_error_extack(at_guard(b.buf, b_end(&b))));
}

int main(int argc, char *argv[])
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE);

        g_test_init(&argc, &argv, NULL);
        guarded.size = page;
        guarded.map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        g_assert(guarded.map != MAP_FAILED);
        g_assert_cmpint(mprotect(guarded.map + page, page, PROT_NONE), ==, 0);

        g_test_add_func("/netlink-parse/link-name-without-nul", test_link_name_without_nul);
        g_test_add_func("/netlink-parse/wireguard-name-without-nul", test_wireguard_name_without_nul);
        g_test_add_func("/netlink-parse/short-numbers", test_short_numbers);
        g_test_add_func("/netlink-parse/extack", test_extack);
        return g_test_run();
}
