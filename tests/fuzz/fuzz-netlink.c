/* libFuzzer target for what netclientd reads from netlink by hand: WireGuard's generic netlink
 * device dumps (wg_netlink_parse_device()), rtnetlink rule and route dumps
 * (routing_*_from_netlink()), link and address notifications (link_event_from_netlink()), the
 * kernel's extended ACK in an error and the errno in a dump's NLMSG_DONE (netlink-util.c).
 *
 * The input is a receive buffer as the kernel fills it: netlink messages one after another. It is
 * cut into messages as libnl does (nlmsg_ok(), nlmsg_next()), and each goes where libnl would send
 * it: NLMSG_ERROR of a sufficient length with an error to the error callback, NLMSG_DONE to the
 * finish callback, anything else to every parser (each one checks the type it wants).
 *
 * Each message is parsed twice: in a heap buffer of exactly its length (as nlmsg_convert() makes
 * one), where AddressSanitizer sees a read past it by our code; and at the very end of a mapping
 * that a PROT_NONE page follows, where a read past it faults even when it happens inside GLib or
 * libnl, which are not instrumented (g_strlcpy() looking for the end of a name, nla_get_u32() of a
 * short attribute). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <netlink/msg.h>

#include "link.h"
#include "netlink-util.h"
#include "routing.h"
#include "wg-netlink.h"

#define GUARDED_SIZE (64 * 1024)

static uint8_t *guarded; /* GUARDED_SIZE bytes, then a page nobody may touch */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        uint8_t *m =
                mmap(NULL, GUARDED_SIZE + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || mprotect(m + GUARDED_SIZE, page, PROT_NONE) < 0)
                abort();
        guarded = m;
        return 0;
}

static void parse(const struct nlmsghdr *h, WgDevice *d, GHashTable *peers)
{
        if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = nlmsg_data(h);
                if (h->nlmsg_len >= (uint32_t)nlmsg_size(sizeof(*e)) && e->error != 0) {
                        g_autofree char *extack = netlink_error_extack(h);
                        g_assert(!extack || strlen(extack) <= 256);
                }
        } else if (h->nlmsg_type == NLMSG_DONE) {
                g_assert(netlink_done_errno(h) <= 0);
        } else {
                RoutingRule rule;
                RoutingRoute route;
                LinkEvent ev;

                (void)wg_netlink_parse_device(h, d, peers);
                if (routing_rule_from_netlink(h, &rule) > 0)
                        g_free(routing_rule_to_string(&rule));
                if (routing_route_from_netlink(h, 7, &route) > 0)
                        g_assert(route.destination.prefixlen <= nm_family_bits(route.destination.family));
                if (link_event_from_netlink(h, &ev) > 0)
                        g_assert(memchr(ev.ifname, 0, sizeof(ev.ifname)));
        }
}

static void one(const struct nlmsghdr *in, WgDevice *d[2], GHashTable *peers[2])
{
        size_t len = in->nlmsg_len;
        g_autofree struct nlmsghdr *h = g_memdup2(in, len);

        parse(h, d[0], peers[0]);
        /* At the end of the mapping, 4-byte aligned: 0-3 bytes of 0xff fill in between. */
        if (len <= GUARDED_SIZE) {
                uint8_t *at = guarded + ((GUARDED_SIZE - len) & ~(size_t)3);
                memset(guarded + GUARDED_SIZE - 4, 0xff, 4);
                memcpy(at, in, len);
                parse((const struct nlmsghdr *)at, d[1], peers[1]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* The receive buffer is aligned, as libnl's is. */
        g_autofree void *buf = g_memdup2(data, size);
        WgDevice *d[2] = {wg_device_new("fuzz0"), wg_device_new("fuzz0")};
        GHashTable *peers[2] = {wg_peer_key_table_new(), wg_peer_key_table_new()};
        struct nlmsghdr *h = buf;
        int n = (int)size;

        while (nlmsg_ok(h, n)) {
                one(h, d, peers);
                h = nlmsg_next(h, &n);
        }
        /* Whatever a dump gave is a device the rest of netclientd can use. */
        for (int k = 0; k < 2; k++) {
                for (guint i = 0; i < d[k]->peers->len; i++) {
                        WgPeer *p = d[k]->peers->pdata[i];
                        g_assert(g_hash_table_lookup(peers[k], &p->public_key) == p);
                }
                g_hash_table_unref(peers[k]);
                wg_device_free(d[k]);
        }
        return 0;
}
