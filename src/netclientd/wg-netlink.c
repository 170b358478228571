/* The kernel WireGuard backend: generic netlink family "wireguard" through libnl-genl, with SET
 * split over page-sized messages and GET dumps merged back into one device. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/wireguard.h>
#include <netlink/attr.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/socket.h>
#include <sodium.h>

#include "link.h"
#include "log.h"
#include "macro.h"
#include "netlink-util.h"
#include "nm-error.h"
#include "wg-backend.h"
#include "wg-internal.h"
#include "wg-netlink.h"

/* The kernel's UAPI struct __kernel_timespec: two signed 64-bit fields. */
typedef struct WgKernelTimespec {
        int64_t tv_sec;
        int64_t tv_nsec;
} WgKernelTimespec;

size_t wg_netlink_message_budget(void)
{
        long page = sysconf(_SC_PAGESIZE);
        if (page <= 0 || page > 8192)
                return 8192;
        return (size_t)page;
}

GHashTable *wg_peer_key_table_new(void)
{
        return g_hash_table_new(wg_key_hash, wg_key_equal);
}

/* ---- building WG_CMD_SET_DEVICE ---- */

typedef struct BuildCursor {
        guint peer;      /* the next peer to write */
        guint ip;        /* its next allowed IP */
        bool continuing; /* its first part (flags, endpoint, ...) was already written */
} BuildCursor;

typedef enum PeerFit {
        PEER_DONE,    /* written completely */
        PEER_PARTIAL, /* written in part: continue at the cursor in the next message */
        PEER_NO_ROOM, /* nothing written: the message is unchanged */
} PeerFit;

static struct nl_msg *set_message_new(const WgDevice *c, int family_id, size_t budget)
{
        struct nl_msg *m = nlmsg_alloc_size(budget);
        if (!m)
                return NULL;
        if (!genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, family_id, 0, NLM_F_REQUEST | NLM_F_ACK,
                         WG_CMD_SET_DEVICE, WG_GENL_VERSION) ||
            (c->ifname[0] ? nla_put_string(m, WGDEVICE_A_IFNAME, c->ifname)
                          : nla_put_u32(m, WGDEVICE_A_IFINDEX, c->ifindex)) < 0) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

static int put_device_attrs(struct nl_msg *m, const WgDevice *c)
{
        if (c->flags & WG_DEVICE_HAS_PRIVATE_KEY &&
            nla_put(m, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, c->private_key.b) < 0)
                return -EMSGSIZE;
        if (c->flags & WG_DEVICE_HAS_LISTEN_PORT &&
            nla_put_u16(m, WGDEVICE_A_LISTEN_PORT, c->listen_port) < 0)
                return -EMSGSIZE;
        if (c->flags & WG_DEVICE_HAS_FWMARK && nla_put_u32(m, WGDEVICE_A_FWMARK, c->fwmark) < 0)
                return -EMSGSIZE;
        if (c->flags & WG_DEVICE_REPLACE_PEERS &&
            nla_put_u32(m, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS) < 0)
                return -EMSGSIZE;
        return 0;
}

static int put_peer_head(struct nl_msg *m, const WgPeer *p)
{
        uint32_t flags = 0;

        if (p->flags & WG_PEER_REMOVE_ME)
                return nla_put_u32(m, WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME);
        if (p->flags & WG_PEER_REPLACE_ALLOWEDIPS)
                flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
        if (p->flags & WG_PEER_UPDATE_ONLY)
                flags |= WGPEER_F_UPDATE_ONLY;
        if (flags && nla_put_u32(m, WGPEER_A_FLAGS, flags) < 0)
                return -EMSGSIZE;
        if (p->flags & WG_PEER_HAS_PRESHARED_KEY &&
            nla_put(m, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, p->preshared_key.b) < 0)
                return -EMSGSIZE;
        if (p->flags & WG_PEER_HAS_ENDPOINT) {
                int r = p->endpoint.sa.sa_family == AF_INET
                                ? nla_put(m, WGPEER_A_ENDPOINT, sizeof(struct sockaddr_in), &p->endpoint.in)
                                : nla_put(m, WGPEER_A_ENDPOINT, sizeof(struct sockaddr_in6),
                                          &p->endpoint.in6);
                if (r < 0)
                        return -EMSGSIZE;
        }
        if (p->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE &&
            nla_put_u16(m, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->persistent_keepalive) < 0)
                return -EMSGSIZE;
        return 0;
}

static int put_allowed_ip(struct nl_msg *m, const NmPrefix *a)
{
        struct nlattr *n = nla_nest_start(m, NLA_F_NESTED);
        if (!n)
                return -EMSGSIZE;
        if (nla_put_u16(m, WGALLOWEDIP_A_FAMILY, (uint16_t)a->family) < 0 ||
            nla_put(m, WGALLOWEDIP_A_IPADDR, a->family == AF_INET ? 4 : 16, a->addr.bytes) < 0 ||
            nla_put_u8(m, WGALLOWEDIP_A_CIDR_MASK, a->prefixlen) < 0) {
                nla_nest_cancel(m, n);
                return -EMSGSIZE;
        }
        nla_nest_end(m, n);
        return 0;
}

/* Writes as much of the peer at the cursor as fits. `alone`: no other peer is in this message yet,
 * so a peer that cannot fit whole must be split here rather than moved on. */
static PeerFit put_peer(struct nl_msg *m, const WgPeer *p, BuildCursor *cur, bool alone)
{
        struct nlattr *pn, *ips = NULL;
        guint first_ip = cur->ip;
        bool wrote_head;

        pn = nla_nest_start(m, NLA_F_NESTED);
        if (!pn)
                return PEER_NO_ROOM;
        if (nla_put(m, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key.b) < 0)
                goto no_room;
        if (!cur->continuing) {
                if (put_peer_head(m, p) < 0)
                        goto no_room;
        } else if (nla_put_u32(m, WGPEER_A_FLAGS, WGPEER_F_UPDATE_ONLY) < 0)
                goto no_room;
        wrote_head = !cur->continuing;

        if (!(p->flags & WG_PEER_REMOVE_ME) && cur->ip < p->allowed_ips->len) {
                ips = nla_nest_start(m, WGPEER_A_ALLOWEDIPS | NLA_F_NESTED);
                if (!ips)
                        goto ips_full;
                for (; cur->ip < p->allowed_ips->len; cur->ip++)
                        if (put_allowed_ip(m, &g_array_index(p->allowed_ips, NmPrefix, cur->ip)) < 0)
                                goto ips_full;
                nla_nest_end(m, ips);
        }
        nla_nest_end(m, pn);
        cur->peer++;
        cur->ip = 0;
        cur->continuing = false;
        return PEER_DONE;

ips_full:
        if (cur->ip > first_ip) {
                nla_nest_end(m, ips);
                nla_nest_end(m, pn);
                cur->continuing = true;
                return PEER_PARTIAL;
        }
        if (ips)
                nla_nest_cancel(m, ips);
        if (alone && wrote_head) {
                /* Not one allowed IP fits after the head: send the head now, the IPs next. */
                nla_nest_end(m, pn);
                cur->continuing = true;
                return PEER_PARTIAL;
        }
no_room:
        nla_nest_cancel(m, pn);
        return PEER_NO_ROOM;
}

static int validate_change(const WgDevice *c, GError **error)
{
        if (!c->ifname[0] && c->ifindex == 0)
                return wg_error(error, -EINVAL, "A WireGuard change set needs an interface name or index");
        if (c->ifname[0] && !wg_ifname_valid(c->ifname, NULL))
                return wg_error(error, -EINVAL, "Invalid interface name \"%s\"", c->ifname);
        for (guint i = 0; i < c->peers->len; i++) {
                const WgPeer *p = c->peers->pdata[i];

                if (p->flags & WG_PEER_HAS_ENDPOINT && p->endpoint.sa.sa_family != AF_INET &&
                    p->endpoint.sa.sa_family != AF_INET6) {
                        char k[NM_KEY_B64_LEN + 1];
                        nm_key_to_base64(&p->public_key, k);
                        return wg_error(error, -EINVAL,
                                        "Peer %s on \"%s\": the endpoint is neither IPv4 nor IPv6", k,
                                        c->ifname);
                }
                for (guint j = 0; j < p->allowed_ips->len; j++) {
                        const NmPrefix *a = &g_array_index(p->allowed_ips, NmPrefix, j);
                        if ((a->family != AF_INET && a->family != AF_INET6) ||
                            a->prefixlen > nm_family_bits(a->family)) {
                                char k[NM_KEY_B64_LEN + 1];
                                nm_key_to_base64(&p->public_key, k);
                                return wg_error(error, -EINVAL,
                                                "Peer %s on \"%s\": allowed IP %u has family %d and prefix "
                                                "length %u; IPv4 /0-32 and IPv6 /0-128 are accepted",
                                                k, c->ifname, j, a->family, a->prefixlen);
                        }
                }
        }
        return 0;
}

/* The first message may carry the private key and any may carry preshared keys. */
static void set_message_free(struct nl_msg *m)
{
        sodium_memzero(nlmsg_hdr(m), nlmsg_hdr(m)->nlmsg_len);
        nlmsg_free(m);
}

int wg_netlink_build_set(const WgDevice *change, int family_id, size_t budget, GPtrArray **ret,
                         GError **error)
{
        g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func((GDestroyNotify)set_message_free);
        BuildCursor cur = {};
        guint npeers = change->peers->len;
        int r;

        if (budget == 0)
                budget = wg_netlink_message_budget();
        r = validate_change(change, error);
        if (r < 0)
                return r;

        do {
                struct nl_msg *m = set_message_new(change, family_id, budget);
                struct nlattr *peers;
                unsigned in_msg = 0;

                if (!m)
                        goto too_small;
                g_ptr_array_add(msgs, m);
                if (msgs->len == 1 && put_device_attrs(m, change) < 0)
                        goto too_small;
                if (cur.peer >= npeers)
                        break;

                peers = nla_nest_start(m, WGDEVICE_A_PEERS | NLA_F_NESTED);
                if (!peers) {
                        if (msgs->len == 1)
                                continue; /* the device attributes filled it; peers go next */
                        goto too_small;
                }
                while (cur.peer < npeers) {
                        PeerFit fit = put_peer(m, change->peers->pdata[cur.peer], &cur, in_msg == 0);
                        if (fit == PEER_NO_ROOM)
                                break;
                        in_msg++;
                        if (fit == PEER_PARTIAL)
                                break;
                }
                if (in_msg == 0) {
                        nla_nest_cancel(m, peers);
                        /* A first message holding the device attributes may leave no room for a
                         * peer; any other message that cannot take one never will. */
                        if (msgs->len > 1 || !(change->flags & ~WG_DEVICE_HAS_PUBLIC_KEY))
                                goto too_small;
                        continue;
                }
                nla_nest_end(m, peers);
        } while (cur.peer < npeers);

        *ret = TAKE_PTR(msgs);
        return 0;

too_small:
        return wg_error(error, -EMSGSIZE,
                        "Cannot fit a WireGuard peer of \"%s\" into a netlink message of %zu bytes",
                        change->ifname, budget);
}

/* ---- parsing WG_CMD_GET_DEVICE ---- */

static bool attr_is(const struct nlattr *a, int len)
{
        return a && nla_len(a) == len;
}

static int parse_allowed_ips(struct nlattr *list, WgPeer *p)
{
        struct nlattr *a;
        int rem;

        nla_for_each_nested(a, list, rem)
        {
                struct nlattr *tb[WGALLOWEDIP_A_MAX + 1];
                NmPrefix prefix = {};
                uint16_t family;
                int alen;

                if (nla_parse_nested(tb, WGALLOWEDIP_A_MAX, a, NULL) < 0)
                        return -EBADMSG;
                if (!attr_is(tb[WGALLOWEDIP_A_FAMILY], 2) || !attr_is(tb[WGALLOWEDIP_A_CIDR_MASK], 1) ||
                    !tb[WGALLOWEDIP_A_IPADDR])
                        return -EBADMSG;
                family = nla_get_u16(tb[WGALLOWEDIP_A_FAMILY]);
                alen = family == AF_INET ? 4 : family == AF_INET6 ? 16 : -1;
                if (alen < 0 || nla_len(tb[WGALLOWEDIP_A_IPADDR]) != alen)
                        return -EBADMSG;
                prefix.family = family;
                memcpy(prefix.addr.bytes, nla_data(tb[WGALLOWEDIP_A_IPADDR]), alen);
                prefix.prefixlen = nla_get_u8(tb[WGALLOWEDIP_A_CIDR_MASK]);
                if (prefix.prefixlen > nm_family_bits(family))
                        return -EBADMSG;
                wg_peer_add_allowed_ip(p, &prefix);
        }
        return 0;
}

static int parse_peer(struct nlattr *attr, WgDevice *d, GHashTable *peers_by_key)
{
        struct nlattr *tb[WGPEER_A_MAX + 1];
        NmKey key;
        WgPeer *p;

        if (nla_parse_nested(tb, WGPEER_A_MAX, attr, NULL) < 0)
                return -EBADMSG;
        if (!attr_is(tb[WGPEER_A_PUBLIC_KEY], WG_KEY_LEN))
                return -EBADMSG;
        memcpy(key.b, nla_data(tb[WGPEER_A_PUBLIC_KEY]), WG_KEY_LEN);

        p = g_hash_table_lookup(peers_by_key, &key);
        if (!p) {
                p = wg_device_add_peer(d, wg_peer_new(&key));
                g_hash_table_insert(peers_by_key, &p->public_key, p);
        }

        if (tb[WGPEER_A_PRESHARED_KEY]) {
                if (!attr_is(tb[WGPEER_A_PRESHARED_KEY], WG_KEY_LEN))
                        return -EBADMSG;
                memcpy(p->preshared_key.b, nla_data(tb[WGPEER_A_PRESHARED_KEY]), WG_KEY_LEN);
                p->flags |= WG_PEER_HAS_PRESHARED_KEY;
        }
        if (tb[WGPEER_A_ENDPOINT]) {
                struct nlattr *e = tb[WGPEER_A_ENDPOINT];
                WgEndpoint ep = {};

                if (nla_len(e) == sizeof(struct sockaddr_in))
                        memcpy(&ep.in, nla_data(e), sizeof(ep.in));
                else if (nla_len(e) == sizeof(struct sockaddr_in6))
                        memcpy(&ep.in6, nla_data(e), sizeof(ep.in6));
                else
                        return -EBADMSG;
                if (ep.sa.sa_family == AF_INET || ep.sa.sa_family == AF_INET6)
                        wg_peer_set_endpoint(p, &ep);
        }
        if (tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]) {
                if (!attr_is(tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL], 2))
                        return -EBADMSG;
                wg_peer_set_persistent_keepalive(p, nla_get_u16(tb[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]));
        }
        if (tb[WGPEER_A_LAST_HANDSHAKE_TIME]) {
                WgKernelTimespec ts;
                if (!attr_is(tb[WGPEER_A_LAST_HANDSHAKE_TIME], sizeof(ts)))
                        return -EBADMSG;
                memcpy(&ts, nla_data(tb[WGPEER_A_LAST_HANDSHAKE_TIME]), sizeof(ts));
                p->last_handshake.tv_sec = (time_t)ts.tv_sec;
                p->last_handshake.tv_nsec = (long)ts.tv_nsec;
        }
        if (tb[WGPEER_A_RX_BYTES]) {
                if (!attr_is(tb[WGPEER_A_RX_BYTES], 8))
                        return -EBADMSG;
                p->rx_bytes = nla_get_u64(tb[WGPEER_A_RX_BYTES]);
        }
        if (tb[WGPEER_A_TX_BYTES]) {
                if (!attr_is(tb[WGPEER_A_TX_BYTES], 8))
                        return -EBADMSG;
                p->tx_bytes = nla_get_u64(tb[WGPEER_A_TX_BYTES]);
        }
        if (tb[WGPEER_A_PROTOCOL_VERSION]) {
                if (!attr_is(tb[WGPEER_A_PROTOCOL_VERSION], 4))
                        return -EBADMSG;
                p->protocol_version = nla_get_u32(tb[WGPEER_A_PROTOCOL_VERSION]);
        }
        if (tb[WGPEER_A_ALLOWEDIPS])
                return parse_allowed_ips(tb[WGPEER_A_ALLOWEDIPS], p);
        return 0;
}

int wg_netlink_parse_device(const struct nlmsghdr *h, WgDevice *d, GHashTable *peers_by_key)
{
        struct nlattr *tb[WGDEVICE_A_MAX + 1];
        struct nlattr *a;
        int rem, r;

        if (genlmsg_parse((struct nlmsghdr *)h, 0, tb, WGDEVICE_A_MAX, NULL) < 0)
                return -EBADMSG;

        if (tb[WGDEVICE_A_IFINDEX]) {
                if (!attr_is(tb[WGDEVICE_A_IFINDEX], 4))
                        return -EBADMSG;
                d->ifindex = nla_get_u32(tb[WGDEVICE_A_IFINDEX]);
        }
        if (tb[WGDEVICE_A_IFNAME]) {
                int len = nla_len(tb[WGDEVICE_A_IFNAME]);
                if (len < 1 || len > IFNAMSIZ)
                        return -EBADMSG;
                /* Bounded by the attribute: a name without its NUL must not be read past. */
                nla_strlcpy(d->ifname, tb[WGDEVICE_A_IFNAME], sizeof(d->ifname));
        }
        if (tb[WGDEVICE_A_PRIVATE_KEY]) {
                if (!attr_is(tb[WGDEVICE_A_PRIVATE_KEY], WG_KEY_LEN))
                        return -EBADMSG;
                memcpy(d->private_key.b, nla_data(tb[WGDEVICE_A_PRIVATE_KEY]), WG_KEY_LEN);
                d->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
        }
        if (tb[WGDEVICE_A_PUBLIC_KEY]) {
                if (!attr_is(tb[WGDEVICE_A_PUBLIC_KEY], WG_KEY_LEN))
                        return -EBADMSG;
                memcpy(d->public_key.b, nla_data(tb[WGDEVICE_A_PUBLIC_KEY]), WG_KEY_LEN);
                d->flags |= WG_DEVICE_HAS_PUBLIC_KEY;
        }
        if (tb[WGDEVICE_A_LISTEN_PORT]) {
                if (!attr_is(tb[WGDEVICE_A_LISTEN_PORT], 2))
                        return -EBADMSG;
                d->listen_port = nla_get_u16(tb[WGDEVICE_A_LISTEN_PORT]);
                d->flags |= WG_DEVICE_HAS_LISTEN_PORT;
        }
        if (tb[WGDEVICE_A_FWMARK]) {
                if (!attr_is(tb[WGDEVICE_A_FWMARK], 4))
                        return -EBADMSG;
                d->fwmark = nla_get_u32(tb[WGDEVICE_A_FWMARK]);
                d->flags |= WG_DEVICE_HAS_FWMARK;
        }
        if (tb[WGDEVICE_A_PEERS])
                nla_for_each_nested(a, tb[WGDEVICE_A_PEERS], rem)
                {
                        r = parse_peer(a, d, peers_by_key);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* ---- the backend ---- */

typedef struct KernelBackend {
        struct nl_sock *genl;
        struct nl_sock *rtnl;
        int family;
} KernelBackend;

typedef struct DumpState {
        WgDevice *device;
        GHashTable *peers_by_key;
} DumpState;

static int dump_handler(struct nl_msg *m, void *userdata)
{
        DumpState *st = userdata;
        return wg_netlink_parse_device(nlmsg_hdr(m), st->device, st->peers_by_key);
}

static int kernel_get(WgBackend *b, const char *ifname, WgDevice **ret, GError **error)
{
        KernelBackend *k = b->data;
        int r = -EAGAIN;

        if (!wg_ifname_valid(ifname, error))
                return -EINVAL;

        /* A dump the kernel flags as interrupted saw the device change half-way: read it again. */
        for (unsigned attempt = 0; attempt < 5 && r == -EAGAIN; attempt++) {
                g_autoptr(WgDevice) d = wg_device_new(ifname);
                g_autoptr(GHashTable) keys = wg_peer_key_table_new();
                g_autofree char *extack = NULL;
                DumpState st = {.device = d, .peers_by_key = keys};
                struct nl_msg *m = nlmsg_alloc();

                if (!m)
                        return wg_error(error, -ENOMEM, "Out of memory");
                if (!genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, k->family, 0, NLM_F_REQUEST | NLM_F_DUMP,
                                 WG_CMD_GET_DEVICE, WG_GENL_VERSION) ||
                    nla_put_string(m, WGDEVICE_A_IFNAME, ifname) < 0) {
                        nlmsg_free(m);
                        return wg_error(error, -ENOMEM, "Out of memory");
                }
                r = netlink_dump(k->genl, m, dump_handler, &st, &extack);
                nlmsg_free(m);
                if (r == 0) {
                        *ret = TAKE_PTR(d);
                        return 0;
                }
                if (r != -EAGAIN)
                        return wg_error(error, r,
                                        "Failed to read WireGuard interface \"%s\" from the kernel: %s%s%s",
                                        ifname, g_strerror(-r), extack ? ": " : "", strempty(extack));
        }
        return wg_error(error, r,
                        "Failed to read WireGuard interface \"%s\": it kept changing while being read",
                        ifname);
}

static int kernel_set(WgBackend *b, const WgDevice *change, GError **error)
{
        KernelBackend *k = b->data;
        g_autoptr(GPtrArray) msgs = NULL;
        int r;

        if (wg_device_is_empty(change))
                return 0;
        r = wg_netlink_build_set(change, k->family, 0, &msgs, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < msgs->len; i++) {
                g_autofree char *extack = NULL;

                r = netlink_request(k->genl, msgs->pdata[i], &extack);
                if (r < 0) {
                        if (msgs->len == 1)
                                return wg_error(error, r,
                                                "Failed to configure WireGuard interface \"%s\": %s%s%s",
                                                change->ifname, g_strerror(-r), extack ? ": " : "",
                                                strempty(extack));
                        return wg_error(error, r,
                                        "Failed to configure WireGuard interface \"%s\" (part %u of %u; the "
                                        "earlier parts were applied): %s%s%s",
                                        change->ifname, i + 1, msgs->len, g_strerror(-r), extack ? ": " : "",
                                        strempty(extack));
                }
        }
        log_debug("Applied %u peer change(s) to \"%s\" in %u netlink message(s)", change->peers->len,
                  change->ifname, msgs->len);
        return 0;
}

static int kernel_link_create(WgBackend *b, const char *ifname, GError **error)
{
        KernelBackend *k = b->data;
        int r;

        if (!wg_ifname_valid(ifname, error))
                return -EINVAL;
        r = link_create_wireguard(k->rtnl, ifname);
        if (r == -EEXIST)
                return wg_error(error, r, "Cannot create WireGuard interface \"%s\": the name is taken",
                                ifname);
        if (r < 0)
                return wg_error(error, r, "Failed to create WireGuard interface \"%s\": %s", ifname,
                                g_strerror(-r));
        return 0;
}

static int kernel_link_delete(WgBackend *b, const char *ifname, GError **error)
{
        KernelBackend *k = b->data;
        int r;

        if (!wg_ifname_valid(ifname, error))
                return -EINVAL;
        r = link_delete(k->rtnl, ifname);
        if (r < 0)
                return wg_error(error, r, "Failed to delete interface \"%s\": %s", ifname, g_strerror(-r));
        return 0;
}

static int kernel_exists(WgBackend *b, const char *ifname)
{
        KernelBackend *k = b->data;
        g_autofree char *kind = NULL;
        int r;

        r = link_get_kind(k->rtnl, ifname, &kind);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return r;
        return streq0(kind, "wireguard");
}

static void kernel_free(WgBackend *b)
{
        KernelBackend *k = b->data;
        if (!k)
                return;
        if (k->genl)
                nl_socket_free(k->genl);
        if (k->rtnl)
                nl_socket_free(k->rtnl);
        g_free(k);
}

static const WgBackendVTable kernel_vtable = {
        .name = "kernel",
        .get = kernel_get,
        .set = kernel_set,
        .link_create = kernel_link_create,
        .link_delete = kernel_link_delete,
        .exists = kernel_exists,
        .free = kernel_free,
};

/* Resolving the family also makes the kernel load the module (it has a genl family alias). */
static int resolve_family(struct nl_sock *genl)
{
        int r = genl_ctrl_resolve(genl, WG_GENL_NAME);
        if (r < 0)
                return netlink_errno_from_nlerr(r) == -ENOENT ? -EPROTONOSUPPORT
                                                              : netlink_errno_from_nlerr(r);
        return r;
}

bool wg_kernel_available(void)
{
        struct nl_sock *genl = NULL;
        int r;

        if (netlink_socket_open(NETLINK_GENERIC, &genl) < 0)
                return false;
        r = resolve_family(genl);
        nl_socket_free(genl);
        return r >= 0;
}

int wg_backend_new_kernel(const WgBackendOptions *options, WgBackend **ret, GError **error)
{
        g_autoptr(WgBackend) b = g_new0(WgBackend, 1);
        KernelBackend *k;
        int r;

        b->vtable = &kernel_vtable;
        b->kind = WG_BACKEND_KERNEL;
        b->data = k = g_new0(KernelBackend, 1);

        r = netlink_socket_open(NETLINK_GENERIC, &k->genl);
        if (r < 0)
                return wg_error(error, r, "Failed to open a generic netlink socket: %s", g_strerror(-r));
        r = resolve_family(k->genl);
        if (r == -EPROTONOSUPPORT)
                return wg_error(error, r,
                                "The kernel has no WireGuard (generic netlink family \"%s\" not found); use "
                                "backend=userspace with wireguard-go",
                                WG_GENL_NAME);
        if (r < 0)
                return wg_error(error, r, "Failed to look up generic netlink family \"%s\": %s",
                                WG_GENL_NAME, g_strerror(-r));
        k->family = r;
        r = link_rtnl_open(&k->rtnl);
        if (r < 0)
                return wg_error(error, r, "Failed to open an rtnetlink socket: %s", g_strerror(-r));
        *ret = TAKE_PTR(b);
        return 0;
}
