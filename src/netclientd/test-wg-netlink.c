/* Proves that the kernel backend splits WG_CMD_SET_DEVICE correctly without a kernel: for large and
 * awkward peer sets every message fits the budget, names the device, carries the device attributes
 * only in the first message, carries every peer and allowed IP exactly once, sets
 * REPLACE_ALLOWEDIPS/endpoint/keepalive only in a peer's first part (continuations are UPDATE_ONLY
 * with just key + allowed IPs), and that the GET parser merges a peer split across messages. */
#include <arpa/inet.h>
#include <string.h>
#include <linux/wireguard.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>

#include "wg-netlink.h"

#define FAMILY_ID 0x1234

static NmKey key_n(unsigned n)
{
        NmKey k = {};
        memcpy(k.b, &n, sizeof(n));
        k.b[31] = 0x77;
        return k;
}

/* 5000 peers by default, each with 1-3 allowed IPs (IPv4 and IPv6), endpoints and keepalives. */
static WgDevice *big_change(unsigned npeers, unsigned max_ips, GRand *rand)
{
        WgDevice *d = wg_device_new("nm-bench");
        NmKey priv = key_n(0xfffff);
        priv.b[0] &= 248;
        priv.b[31] = (priv.b[31] & 127) | 64;
        g_assert_cmpint(wg_device_set_private_key(d, &priv), ==, 0);
        wg_device_set_listen_port(d, 51820);
        wg_device_set_fwmark(d, 0x42);

        for (unsigned i = 0; i < npeers; i++) {
                NmKey k = key_n(i);
                WgPeer *p = wg_device_add_peer(d, wg_peer_new(&k));
                unsigned nips = (unsigned)g_rand_int_range(rand, 1, (gint32)max_ips + 1);
                WgEndpoint e;

                for (unsigned j = 0; j < nips; j++) {
                        NmPrefix a = {};
                        if (j % 2 == 0) {
                                a.family = AF_INET;
                                a.addr.in.s_addr = htonl(0x0a000000u + i * 4 + j);
                                a.prefixlen = 32;
                        } else {
                                a.family = AF_INET6;
                                a.addr.in6.s6_addr[0] = 0xfd;
                                memcpy(a.addr.in6.s6_addr + 8, &i, sizeof(i));
                                a.addr.in6.s6_addr[15] = (uint8_t)j;
                                a.prefixlen = 128;
                        }
                        wg_peer_add_allowed_ip(p, &a);
                }
                if (i % 3 == 0) {
                        g_autofree char *s = g_strdup_printf("198.18.%u.%u:%u", (i >> 8) & 0xff, i & 0xff,
                                                             10000 + i % 5000);
                        g_assert_cmpint(wg_endpoint_parse(s, &e, NULL), ==, 0);
                        wg_peer_set_endpoint(p, &e);
                } else if (i % 3 == 1) {
                        g_assert_cmpint(wg_endpoint_parse("[fd00::1]:51820", &e, NULL), ==, 0);
                        wg_peer_set_endpoint(p, &e);
                }
                wg_peer_set_persistent_keepalive(p, 25);
                if (i % 7 == 0)
                        p->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
                if (i % 11 == 0)
                        p->flags |= WG_PEER_UPDATE_ONLY;
                if (i % 13 == 0) {
                        NmKey psk = key_n(i + 1);
                        wg_peer_set_preshared_key(p, &psk);
                }
        }
        return d;
}

typedef struct Seen {
        unsigned parts;      /* fragments of the peer seen */
        unsigned heads;      /* fragments carrying endpoint/keepalive/psk/replace */
        GArray *allowed_ips; /* in order of appearance */
} Seen;

static void seen_free(Seen *s)
{
        g_array_unref(s->allowed_ips);
        g_free(s);
}

/* Parses every message back with libnl's attribute parser and checks the splitting rules. */
static void check_messages(const WgDevice *change, GPtrArray *msgs, size_t budget)
{
        g_autoptr(GHashTable) seen = g_hash_table_new_full(
                g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, (GDestroyNotify)seen_free);
        const WgPeer *last_peer_of_prev = NULL;

        g_assert_cmpuint(msgs->len, >=, 1);
        for (guint m = 0; m < msgs->len; m++) {
                struct nlmsghdr *h = nlmsg_hdr(msgs->pdata[m]);
                struct genlmsghdr *g = nlmsg_data(h);
                struct nlattr *tb[WGDEVICE_A_MAX + 1], *pa;
                int rem;
                bool first_in_msg = true;

                g_assert_cmpuint(h->nlmsg_len, <=, budget);
                g_assert_cmpuint(h->nlmsg_type, ==, FAMILY_ID);
                g_assert_true(h->nlmsg_flags & NLM_F_REQUEST);
                g_assert_true(h->nlmsg_flags & NLM_F_ACK);
                g_assert_cmpuint(g->cmd, ==, WG_CMD_SET_DEVICE);
                g_assert_cmpint(genlmsg_parse(h, 0, tb, WGDEVICE_A_MAX, NULL), ==, 0);
                g_assert_nonnull(tb[WGDEVICE_A_IFNAME]);
                g_assert_cmpstr(nla_get_string(tb[WGDEVICE_A_IFNAME]), ==, change->ifname);

                bool dev_attrs = tb[WGDEVICE_A_PRIVATE_KEY] || tb[WGDEVICE_A_LISTEN_PORT] ||
                                 tb[WGDEVICE_A_FWMARK] || tb[WGDEVICE_A_FLAGS];
                if (m == 0) {
                        g_assert_true(!!tb[WGDEVICE_A_PRIVATE_KEY] ==
                                      !!(change->flags & WG_DEVICE_HAS_PRIVATE_KEY));
                        g_assert_true(!!tb[WGDEVICE_A_LISTEN_PORT] ==
                                      !!(change->flags & WG_DEVICE_HAS_LISTEN_PORT));
                        g_assert_true(!!tb[WGDEVICE_A_FWMARK] == !!(change->flags & WG_DEVICE_HAS_FWMARK));
                        g_assert_true(!!tb[WGDEVICE_A_FLAGS] == !!(change->flags & WG_DEVICE_REPLACE_PEERS));
                        if (tb[WGDEVICE_A_LISTEN_PORT])
                                g_assert_cmpuint(nla_get_u16(tb[WGDEVICE_A_LISTEN_PORT]), ==,
                                                 change->listen_port);
                } else
                        g_assert_false(dev_attrs);

                if (!tb[WGDEVICE_A_PEERS]) {
                        /* Only the first message may be without peers (device attributes alone). */
                        g_assert_true(m == 0);
                        continue;
                }
                nla_for_each_nested(pa, tb[WGDEVICE_A_PEERS], rem)
                {
                        struct nlattr *pt[WGPEER_A_MAX + 1], *ia;
                        int irem;

                        g_assert_cmpint(nla_parse_nested(pt, WGPEER_A_MAX, pa, NULL), ==, 0);
                        g_assert_nonnull(pt[WGPEER_A_PUBLIC_KEY]);
                        g_assert_cmpint(nla_len(pt[WGPEER_A_PUBLIC_KEY]), ==, WG_KEY_LEN);
                        NmKey k;
                        memcpy(k.b, nla_data(pt[WGPEER_A_PUBLIC_KEY]), WG_KEY_LEN);
                        const WgPeer *p = wg_device_find_peer(change, &k);
                        g_assert_nonnull(p);

                        GBytes *kb = g_bytes_new(k.b, sizeof(k.b));
                        Seen *s = g_hash_table_lookup(seen, kb);
                        if (!s) {
                                s = g_new0(Seen, 1);
                                s->allowed_ips = g_array_new(FALSE, TRUE, sizeof(NmPrefix));
                                g_hash_table_insert(seen, kb, s);
                        } else {
                                g_bytes_unref(kb);
                                /* A peer continues only at the start of the next message. */
                                g_assert_true(first_in_msg);
                                g_assert_true(last_peer_of_prev == p);
                        }
                        s->parts++;

                        uint32_t flags = pt[WGPEER_A_FLAGS] ? nla_get_u32(pt[WGPEER_A_FLAGS]) : 0;
                        bool head = s->parts == 1;
                        if (head) {
                                uint32_t want = 0;
                                if (p->flags & WG_PEER_REMOVE_ME)
                                        want = WGPEER_F_REMOVE_ME;
                                else {
                                        if (p->flags & WG_PEER_REPLACE_ALLOWEDIPS)
                                                want |= WGPEER_F_REPLACE_ALLOWEDIPS;
                                        if (p->flags & WG_PEER_UPDATE_ONLY)
                                                want |= WGPEER_F_UPDATE_ONLY;
                                }
                                g_assert_cmpuint(flags, ==, want);
                                g_assert_true(!!pt[WGPEER_A_ENDPOINT] ==
                                              !!(p->flags & WG_PEER_HAS_ENDPOINT));
                                g_assert_true(!!pt[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL] ==
                                              !!(p->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE));
                                g_assert_true(!!pt[WGPEER_A_PRESHARED_KEY] ==
                                              !!(p->flags & WG_PEER_HAS_PRESHARED_KEY));
                                s->heads++;
                        } else {
                                /* A continuation: key, UPDATE_ONLY and allowed IPs, nothing else. */
                                g_assert_cmpuint(flags, ==, WGPEER_F_UPDATE_ONLY);
                                g_assert_null(pt[WGPEER_A_ENDPOINT]);
                                g_assert_null(pt[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]);
                                g_assert_null(pt[WGPEER_A_PRESHARED_KEY]);
                                g_assert_nonnull(pt[WGPEER_A_ALLOWEDIPS]);
                        }

                        if (pt[WGPEER_A_ALLOWEDIPS])
                                nla_for_each_nested(ia, pt[WGPEER_A_ALLOWEDIPS], irem)
                                {
                                        struct nlattr *at[WGALLOWEDIP_A_MAX + 1];
                                        NmPrefix a = {};
                                        g_assert_cmpint(nla_parse_nested(at, WGALLOWEDIP_A_MAX, ia, NULL),
                                                        ==, 0);
                                        a.family = nla_get_u16(at[WGALLOWEDIP_A_FAMILY]);
                                        g_assert_cmpint(nla_len(at[WGALLOWEDIP_A_IPADDR]), ==,
                                                        a.family == AF_INET ? 4 : 16);
                                        memcpy(a.addr.bytes, nla_data(at[WGALLOWEDIP_A_IPADDR]),
                                               (size_t)nla_len(at[WGALLOWEDIP_A_IPADDR]));
                                        a.prefixlen = nla_get_u8(at[WGALLOWEDIP_A_CIDR_MASK]);
                                        g_array_append_val(s->allowed_ips, a);
                                }
                        last_peer_of_prev = p;
                        first_in_msg = false;
                }
        }

        /* Every peer exactly once (one head), every allowed IP exactly once, in order. */
        g_assert_cmpuint(g_hash_table_size(seen), ==, change->peers->len);
        for (guint i = 0; i < change->peers->len; i++) {
                const WgPeer *p = change->peers->pdata[i];
                g_autoptr(GBytes) kb = g_bytes_new(p->public_key.b, sizeof(p->public_key.b));
                Seen *s = g_hash_table_lookup(seen, kb);
                g_assert_nonnull(s);
                g_assert_cmpuint(s->heads, ==, 1);
                if (p->flags & WG_PEER_REMOVE_ME) {
                        g_assert_cmpuint(s->allowed_ips->len, ==, 0);
                        continue;
                }
                g_assert_cmpuint(s->allowed_ips->len, ==, p->allowed_ips->len);
                g_assert_cmpmem(s->allowed_ips->data, s->allowed_ips->len * sizeof(NmPrefix),
                                p->allowed_ips->data, p->allowed_ips->len * sizeof(NmPrefix));
        }
}

/* The same messages read by the GET parser must give back the same device. */
static void check_roundtrip(const WgDevice *change, GPtrArray *msgs)
{
        g_autoptr(WgDevice) d = wg_device_new(NULL);
        g_autoptr(GHashTable) keys = wg_peer_key_table_new();

        for (guint m = 0; m < msgs->len; m++)
                g_assert_cmpint(wg_netlink_parse_device(nlmsg_hdr(msgs->pdata[m]), d, keys), ==, 0);
        g_assert_cmpstr(d->ifname, ==, change->ifname);
        g_assert_cmpuint(d->peers->len, ==, change->peers->len);
        for (guint i = 0; i < change->peers->len; i++) {
                const WgPeer *want = change->peers->pdata[i];
                const WgPeer *got = d->peers->pdata[i];
                g_assert_true(nm_key_equal(&want->public_key, &got->public_key));
                if (want->flags & WG_PEER_REMOVE_ME)
                        continue;
                g_assert_true(wg_allowed_ips_equal(want->allowed_ips, got->allowed_ips));
                g_assert_cmpuint(want->allowed_ips->len, ==, got->allowed_ips->len);
                if (want->flags & WG_PEER_HAS_ENDPOINT)
                        g_assert_true(wg_endpoint_equal(&want->endpoint, &got->endpoint));
        }
}

static void test_5000_peers(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(5000);
        g_autoptr(WgDevice) change = big_change(5000, 3, rand);
        g_autoptr(GPtrArray) msgs = NULL;
        size_t budget = wg_netlink_message_budget();

        g_assert_cmpuint(budget, <=, 8192);
        g_assert_cmpint(wg_netlink_build_set(change, FAMILY_ID, 0, &msgs, NULL), ==, 0);
        g_test_message("5000 peers, %zu allowed IPs: %u messages of at most %zu bytes",
                       wg_device_count_allowed_ips(change), msgs->len, budget);
        /* Roughly 60-100 peers a message; far fewer messages would mean overfilled ones. */
        g_assert_cmpuint(msgs->len, >, 5000 / 120);
        g_assert_cmpuint(msgs->len, <, 5000 / 20);
        check_messages(change, msgs, budget);
        check_roundtrip(change, msgs);
}

static void test_peer_with_many_allowed_ips(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(1);
        g_autoptr(WgDevice) change = big_change(5, 1, rand);
        g_autoptr(GPtrArray) msgs = NULL;
        WgPeer *big = change->peers->pdata[2];

        /* One peer with 2000 routes (a gateway): it must continue over several messages. */
        big->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
        for (unsigned i = 0; i < 2000; i++) {
                NmPrefix a = {.family = AF_INET, .prefixlen = 24};
                a.addr.in.s_addr = htonl(0x64000000u + (i << 8));
                wg_peer_add_allowed_ip(big, &a);
        }
        g_assert_cmpint(wg_netlink_build_set(change, FAMILY_ID, 0, &msgs, NULL), ==, 0);
        g_assert_cmpuint(msgs->len, >=, 4);
        check_messages(change, msgs, wg_netlink_message_budget());
        check_roundtrip(change, msgs);
}

static void test_removals_and_small_budgets(void)
{
        /* Random sets against budgets from tiny to large: the rules hold for every split point. */
        for (unsigned round = 0; round < 200; round++) {
                g_autoptr(GRand) rand = g_rand_new_with_seed(round);
                g_autoptr(WgDevice) change = big_change((unsigned)g_rand_int_range(rand, 0, 60),
                                                        (unsigned)g_rand_int_range(rand, 1, 40), rand);
                g_autoptr(GPtrArray) msgs = NULL;
                size_t budget = (size_t)g_rand_int_range(rand, 300, 4096);

                for (guint i = 0; i < change->peers->len; i++)
                        if (g_rand_int_range(rand, 0, 5) == 0)
                                ((WgPeer *)change->peers->pdata[i])->flags = WG_PEER_REMOVE_ME;
                if (round % 4 == 0)
                        change->flags |= WG_DEVICE_REPLACE_PEERS;
                if (round % 5 == 0)
                        change->flags &= ~(WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT |
                                           WG_DEVICE_HAS_FWMARK);

                g_assert_cmpint(wg_netlink_build_set(change, FAMILY_ID, budget, &msgs, NULL), ==, 0);
                check_messages(change, msgs, budget);
                check_roundtrip(change, msgs);
        }
}

static void test_budget_too_small(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(7);
        g_autoptr(WgDevice) change = big_change(3, 2, rand);
        g_autoptr(GPtrArray) msgs = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(wg_netlink_build_set(change, FAMILY_ID, 100, &msgs, &error), ==, -EMSGSIZE);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error->message, "nm-bench"));
}

static void test_invalid_allowed_ip(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(7);
        g_autoptr(WgDevice) change = big_change(3, 2, rand);
        g_autoptr(GPtrArray) msgs = NULL;
        g_autoptr(GError) error = NULL;
        NmPrefix bad = {.family = AF_INET, .prefixlen = 33};

        wg_peer_add_allowed_ip(change->peers->pdata[1], &bad);
        g_assert_cmpint(wg_netlink_build_set(change, FAMILY_ID, 0, &msgs, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error->message, "prefix length 33"));
}

static void test_dump_coalescing(void)
{
        /* A GET dump repeats a peer at the start of the next part with only more allowed IPs. */
        g_autoptr(GRand) rand = g_rand_new_with_seed(3);
        g_autoptr(WgDevice) change = big_change(2, 1, rand);
        g_autoptr(GPtrArray) msgs = NULL;
        g_autoptr(WgDevice) d = wg_device_new(NULL);
        g_autoptr(GHashTable) keys = wg_peer_key_table_new();
        WgPeer *p = change->peers->pdata[1];

        for (unsigned i = 0; i < 700; i++) {
                NmPrefix a = {.family = AF_INET6, .prefixlen = 64};
                a.addr.in6.s6_addr[0] = 0x20;
                a.addr.in6.s6_addr[7] = (uint8_t)i;
                a.addr.in6.s6_addr[6] = (uint8_t)(i >> 8);
                wg_peer_add_allowed_ip(p, &a);
        }
        g_assert_cmpint(wg_netlink_build_set(change, FAMILY_ID, 2048, &msgs, NULL), ==, 0);
        g_assert_cmpuint(msgs->len, >, 3);
        for (guint m = 0; m < msgs->len; m++)
                g_assert_cmpint(wg_netlink_parse_device(nlmsg_hdr(msgs->pdata[m]), d, keys), ==, 0);
        g_assert_cmpuint(d->peers->len, ==, 2);
        g_assert_cmpuint(((WgPeer *)d->peers->pdata[1])->allowed_ips->len, ==, 701);
        g_assert_true(d->flags & WG_DEVICE_HAS_LISTEN_PORT);
        g_assert_cmpuint(d->listen_port, ==, 51820);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_assert_cmpint(nm_crypto_init(), ==, 0);
        g_test_add_func("/wg-netlink/5000-peers", test_5000_peers);
        g_test_add_func("/wg-netlink/peer-with-many-allowed-ips", test_peer_with_many_allowed_ips);
        g_test_add_func("/wg-netlink/removals-and-small-budgets", test_removals_and_small_budgets);
        g_test_add_func("/wg-netlink/budget-too-small", test_budget_too_small);
        g_test_add_func("/wg-netlink/invalid-allowed-ip", test_invalid_allowed_ip);
        g_test_add_func("/wg-netlink/dump-coalescing", test_dump_coalescing);
        return g_test_run();
}
