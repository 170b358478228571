/* One joined network: desired state, Peer objects, and applying both to the WireGuard link. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidr.h"
#include "link.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "network.h"
#include "network-dns.h"
#include "nm-error.h"
#include "peer.h"

static char *key_b64(const NmKey *k)
{
        char b[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(k, b);
        return g_strdup(b);
}

static void peer_free_void(gpointer p)
{
        peer_free(p);
}

int network_new(Manager *m, NmNetworkState *desired, Network **ret)
{
        Network *n = g_new0(Network, 1);
        int r;

        n->manager = m;
        n->desired = desired;
        if (!n->desired->peers)
                n->desired->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);
        n->name = g_strdup(desired->network);
        nm_network_ifname(n->name, n->ifname);
        n->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, peer_free_void);
        n->routes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        r = sd_bus_path_encode(NETCLIENT_NETWORK_PREFIX, n->name, &n->path);
        if (r < 0) {
                network_free(n);
                return r;
        }
        if (m->bus) {
                r = network_bus_export(n);
                if (r < 0)
                        log_warning_errno(r, "Failed to export network %s on the bus: %m", n->name);
        }
        network_sync_peer_objects(n);
        *ret = n;
        return 0;
}

Network *network_free(Network *n)
{
        if (!n)
                return NULL;
        n->dns = network_dns_free(n->dns);
        api_request_cancel(n->connected_request);
        /* Peers first, so InterfacesRemoved arrives for them before their network's. */
        g_hash_table_unref(n->peers);
        network_bus_unexport(n);
        g_hash_table_unref(n->routes);
        nm_network_state_free(n->desired);
        free(n->path);
        g_free(n->name);
        g_free(n);
        return NULL;
}

bool network_is_connected(Network *n)
{
        return !g_hash_table_contains(n->manager->disconnected, n->name);
}

static int strcmp_p(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char **network_addresses(Network *n)
{
        GPtrArray *a = g_ptr_array_new();
        if (n->desired->ipv4)
                g_ptr_array_add(a, g_ascii_strdown(n->desired->ipv4, -1));
        if (n->desired->ipv6)
                g_ptr_array_add(a, g_ascii_strdown(n->desired->ipv6, -1));
        g_ptr_array_add(a, NULL);
        return (char **)g_ptr_array_free(a, false);
}

char **network_peer_paths(Network *n)
{
        GPtrArray *a = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, n->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Peer *p = v;
                if (p->exported)
                        g_ptr_array_add(a, g_strdup(p->path));
        }
        g_ptr_array_sort(a, strcmp_p);
        g_ptr_array_add(a, NULL);
        return (char **)g_ptr_array_free(a, false);
}

Peer *network_find_peer(Network *n, const NmKey *key)
{
        g_autofree char *k = key_b64(key);
        return g_hash_table_lookup(n->peers, k);
}

static void emit_network_changed(Network *n, const char *const *props)
{
        if (!n->manager->bus || !n->exported)
                return;
        (void)sd_bus_emit_properties_changed_strv(n->manager->bus, n->path, NETCLIENT_NETWORK_INTERFACE,
                                                  (char **)props);
}

void network_set_serial(Network *n, guint64 serial)
{
        static const char *const props[] = {"Serial", NULL};

        if (n->serial == serial)
                return;
        n->serial = serial;
        emit_network_changed(n, props);
}

void network_sync_peer_objects(Network *n)
{
        g_autoptr(GHashTable) want = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        bool set_changed = false;
        GHashTableIter it;
        gpointer k;

        for (guint i = 0; i < n->desired->peers->len; i++) {
                NmPeer *dp = n->desired->peers->pdata[i];
                g_autofree char *key = key_b64(&dp->public_key);
                Peer *p = g_hash_table_lookup(n->peers, key);

                if (p)
                        peer_set_desired(p, dp);
                else {
                        int r = peer_new(n, dp, &p);
                        if (r < 0) {
                                log_warning_errno(r, "Failed to add peer %s to network %s: %m",
                                                  strna(dp->name), n->name);
                                continue;
                        }
                        g_hash_table_insert(n->peers, g_strdup(key), p);
                        set_changed = true;
                }
                g_hash_table_add(want, TAKE_PTR(key));
        }
        g_hash_table_iter_init(&it, n->peers);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (!g_hash_table_contains(want, k)) {
                        g_hash_table_iter_remove(&it);
                        set_changed = true;
                }
        if (set_changed) {
                static const char *const props[] = {"Peers", NULL};
                emit_network_changed(n, props);
        }
}

/* ---- pure state changes ------------------------------------------------------------------------ */

static int find_peer_index(GPtrArray *peers, const NmKey *k)
{
        for (guint i = 0; i < peers->len; i++)
                if (nm_key_equal(&((NmPeer *)peers->pdata[i])->public_key, k))
                        return (int)i;
        return -1;
}

int network_state_apply_delta(NmNetworkState *s, const NmMessage *msg, GArray **ret_keys, GError **error)
{
        g_autoptr(GArray) keys = g_array_new(false, false, sizeof(NmKey));
        GPtrArray *lists[2] = {msg->add, msg->update};

        if (msg->type != NM_MSG_PEERS || !streq0(msg->network, s->network)) {
                g_set_error(error, NM_ERROR, NM_ERROR_INVALID_ARGUMENT, "Not a peers message for network %s",
                            s->network);
                return -EINVAL;
        }
        if (!s->peers)
                s->peers = g_ptr_array_new_with_free_func((GDestroyNotify)nm_peer_free);

        /* An "add" of a peer we have is an update; an "update" of one we lack is an add: either
         * way the server's copy of the peer wins. */
        for (size_t l = 0; l < G_N_ELEMENTS(lists); l++)
                for (guint i = 0; lists[l] && i < lists[l]->len; i++) {
                        const NmPeer *p = lists[l]->pdata[i];
                        int idx = find_peer_index(s->peers, &p->public_key);
                        if (idx >= 0) {
                                nm_peer_free(s->peers->pdata[idx]);
                                s->peers->pdata[idx] = nm_peer_copy(p);
                        } else
                                g_ptr_array_add(s->peers, nm_peer_copy(p));
                        g_array_append_val(keys, p->public_key);
                }
        for (guint i = 0; msg->remove && i < msg->remove->len; i++) {
                const NmKey *k = msg->remove->pdata[i];
                int idx = find_peer_index(s->peers, k);
                if (idx >= 0)
                        g_ptr_array_remove_index(s->peers, (guint)idx);
                g_array_append_val(keys, *k);
        }
        if (ret_keys)
                *ret_keys = TAKE_PTR(keys);
        return 0;
}

bool network_set_desired(Network *n, NmNetworkState *desired)
{
        g_autoptr(GPtrArray) changed = g_ptr_array_new();
        NmNetworkState *old = n->desired;
        bool apply = false;

        if (!desired->peers) {
                /* network-changed carries settings only: keep the peers we have. */
                desired->peers = old->peers;
                old->peers = NULL;
        } else
                apply = true;

        if (!streq0(old->ipv4, desired->ipv4) || !streq0(old->ipv6, desired->ipv6)) {
                g_ptr_array_add(changed, "Addresses");
                apply = true;
        }
        if (old->listen_port != desired->listen_port) {
                g_ptr_array_add(changed, "ListenPort");
                apply = true;
        }
        if (!streq0(old->node_id, desired->node_id))
                g_ptr_array_add(changed, "NodeId");
        if (old->mtu != desired->mtu || old->keepalive != desired->keepalive)
                apply = true;
        if (!nm_observer_equal(old->observer, desired->observer))
                apply = true;

        n->desired = desired;
        if (network_roles_changed(n, &old->roles))
                apply = true;
        if (!streq0(old->ipv4, desired->ipv4) || !streq0(old->ipv6, desired->ipv6)) {
                /* Remember what to take off the link. */
                g_autofree char *o4 = g_strdup(old->ipv4), *o6 = g_strdup(old->ipv6);
                Manager *m = n->manager;
                if (m->rtnl) {
                        NmPrefix p;
                        if (o4 && !streq0(o4, desired->ipv4) && nm_prefix_parse(o4, &p, NULL) == 0)
                                (void)link_address_remove(m->rtnl, n->ifname, &p);
                        if (o6 && !streq0(o6, desired->ipv6) && nm_prefix_parse(o6, &p, NULL) == 0)
                                (void)link_address_remove(m->rtnl, n->ifname, &p);
                }
        }
        nm_network_state_free(old);
        network_sync_peer_objects(n);
        if (changed->len > 0) {
                g_ptr_array_add(changed, NULL);
                emit_network_changed(n, (const char *const *)changed->pdata);
        }
        return apply;
}

/* ---- applying to the link ----------------------------------------------------------------------- */

static WgPeer *wg_peer_from_nm(const NmPeer *p, GError **error)
{
        g_autoptr(WgPeer) wp = wg_peer_new(&p->public_key);

        if (p->endpoint && *p->endpoint) {
                WgEndpoint ep;
                if (wg_endpoint_parse(p->endpoint, &ep, error) < 0)
                        return NULL;
                wg_peer_set_endpoint(wp, &ep);
        }
        wg_peer_set_persistent_keepalive(wp, (uint16_t)MIN(p->keepalive, 65535u));
        for (char **a = p->allowed_ips; a && *a; a++)
                if (wg_peer_add_allowed_ip_string(wp, *a, error) < 0)
                        return NULL;
        /* Desired allowed IPs are the whole list: the diff replaces them only when they differ. */
        wp->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
        return TAKE_PTR(wp);
}

/* The server's observer as a peer: its key and endpoint, a keepalive, no allowed IPs (nothing is
 * routed to it; WireGuard only keeps trying to reach it, which shows the server our NAT mapping). */
static WgPeer *observer_peer(const NmObserver *o, GError **error)
{
        g_autoptr(WgPeer) wp = wg_peer_new(&o->public_key);
        WgEndpoint ep;

        if (wg_endpoint_parse(o->endpoint, &ep, error) < 0)
                return NULL;
        wg_peer_set_endpoint(wp, &ep);
        wg_peer_set_persistent_keepalive(wp, (uint16_t)MIN(o->keepalive, 65535u));
        wp->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
        return TAKE_PTR(wp);
}

static WgDevice *desired_device(Network *n, bool with_device, bool with_peers, GArray *only, GError **error)
{
        Manager *m = n->manager;
        g_autoptr(WgDevice) d = wg_device_new(n->ifname);

        if (with_device) {
                if (wg_device_set_private_key(d, &m->identity.wg_private) < 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Invalid WireGuard private key");
                        return NULL;
                }
                wg_device_set_listen_port(d, n->desired->listen_port);
                /* Marks the tunnel's own packets, so they bypass the internet gateway's routes. */
                wg_device_set_fwmark(d, network_gateway_table(n));
        }
        if (!with_peers)
                return TAKE_PTR(d);
        for (guint i = 0; i < n->desired->peers->len; i++) {
                const NmPeer *p = n->desired->peers->pdata[i];
                bool wanted = !only;
                for (guint j = 0; only && j < only->len && !wanted; j++)
                        wanted = nm_key_equal(&g_array_index(only, NmKey, j), &p->public_key);
                if (!wanted)
                        continue;
                /* Our own key never becomes a peer of ourselves. */
                if (nm_key_equal(&p->public_key, &m->identity.wg_public))
                        continue;
                WgPeer *wp = wg_peer_from_nm(p, error);
                if (!wp) {
                        g_prefix_error(error, "Peer %s of network %s: ", strna(p->name), n->name);
                        return NULL;
                }
                wg_device_add_peer(d, wp);
        }
        const NmObserver *o = n->desired->observer;
        if (o && !only && !nm_key_equal(&o->public_key, &m->identity.wg_public) &&
            !wg_device_find_peer(d, &o->public_key)) {
                WgPeer *wp = observer_peer(o, error);
                if (!wp) {
                        g_prefix_error(error, "The server's observer of network %s: ", n->name);
                        return NULL;
                }
                wg_device_add_peer(d, wp);
        }
        return TAKE_PTR(d);
}

/* WireGuard moves a peer's endpoint to wherever its authenticated packets come from (roaming):
 * behind a NAT that maps each destination anew, that is the only address that works, and the server
 * cannot know it. So the device's endpoint is kept, not overwritten with the server's, while the
 * server has nothing new to say about the peer (its endpoint is the one we last wrote), and also
 * when it has, if WireGuard roamed away from what we wrote and still has a session there (the
 * peer's own packets proved it). Without a record of what we wrote (after a start): kept while
 * there is a session. Peers left with nothing to change are dropped from the change. */
static void keep_roamed_endpoints(Network *n, const WgDevice *current, WgDevice *change)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);

        for (guint i = 0; i < change->peers->len; i++) {
                WgPeer *cp = change->peers->pdata[i];
                if (!(cp->flags & WG_PEER_HAS_ENDPOINT) || !(cp->flags & WG_PEER_UPDATE_ONLY))
                        continue;
                Peer *p = network_find_peer(n, &cp->public_key);
                const WgPeer *dev = current ? wg_device_find_peer(current, &cp->public_key) : NULL;
                if (!p || !dev || dev->endpoint.sa.sa_family == AF_UNSPEC)
                        continue;
                bool keep =
                        peer_keep_device_endpoint(p->applied_endpoint, p->desired->endpoint, &dev->endpoint,
                                                  dev->last_handshake.tv_sec, now.tv_sec);
                if (!keep)
                        continue;
                cp->flags &= ~WG_PEER_HAS_ENDPOINT;
                if ((cp->flags & ~WG_PEER_UPDATE_ONLY) == 0 && cp->allowed_ips->len == 0)
                        g_ptr_array_remove_index(change->peers, i--);
        }
}

/* After a successful write: the server's endpoints, as they are now, were applied. */
static void note_applied(Network *n, GArray *only)
{
        for (guint i = 0; i < n->desired->peers->len; i++) {
                const NmPeer *dp = n->desired->peers->pdata[i];
                bool wanted = !only;
                for (guint j = 0; only && j < only->len && !wanted; j++)
                        wanted = nm_key_equal(&g_array_index(only, NmKey, j), &dp->public_key);
                Peer *p = wanted ? network_find_peer(n, &dp->public_key) : NULL;
                if (p) {
                        g_free(p->applied_endpoint);
                        p->applied_endpoint = g_strdup(strempty(dp->endpoint));
                }
        }
}

static int configure_link(Network *n, GError **error)
{
        Manager *m = n->manager;
        const char *addrs[] = {n->desired->ipv4, n->desired->ipv6};
        int r;

        if (!m->rtnl)
                return 0;
        r = link_set_mtu(m->rtnl, n->ifname, n->desired->mtu);
        if (r < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to set MTU %u on %s: %s",
                            n->desired->mtu, n->ifname, g_strerror(-r));
                return r;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(addrs); i++) {
                NmPrefix p;
                if (!addrs[i])
                        continue;
                if (nm_prefix_parse(addrs[i], &p, error) < 0)
                        return -EINVAL;
                r = link_address_add(m->rtnl, n->ifname, &p);
                if (r < 0) {
                        g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to add address %s to %s: %s",
                                    addrs[i], n->ifname, g_strerror(-r));
                        return r;
                }
        }
        r = link_set_up(m->rtnl, n->ifname, network_is_connected(n));
        if (r < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to set %s %s: %s", n->ifname,
                            network_is_connected(n) ? "up" : "down", g_strerror(-r));
                return r;
        }
        return 0;
}

/* What is about to be written, at debug level (keys are public; nothing secret is printed). */
static void log_change(Network *n, const WgDevice *change)
{
        if (log_get_max_level() < LOG_DEBUG)
                return;
        if (change->flags & (WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT | WG_DEVICE_HAS_FWMARK))
                log_debug("%s: device:%s%s%s", n->ifname,
                          change->flags & WG_DEVICE_HAS_PRIVATE_KEY ? " private-key" : "",
                          change->flags & WG_DEVICE_HAS_LISTEN_PORT ? " listen-port" : "",
                          change->flags & WG_DEVICE_HAS_FWMARK ? " fwmark" : "");
        for (guint i = 0; i < change->peers->len; i++) {
                const WgPeer *p = change->peers->pdata[i];
                char k[NM_KEY_B64_LEN + 1];
                nm_key_to_base64(&p->public_key, k);
                log_debug("%s: peer %s:%s%s%s%s%s (%u allowed IPs)", n->ifname, k,
                          p->flags & WG_PEER_REMOVE_ME ? " remove" : "",
                          p->flags & WG_PEER_REMOVE_ME     ? ""
                          : p->flags & WG_PEER_UPDATE_ONLY ? " update"
                                                           : " add",
                          p->flags & WG_PEER_HAS_ENDPOINT ? " endpoint" : "",
                          p->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE ? " keepalive" : "",
                          p->flags & WG_PEER_REPLACE_ALLOWEDIPS ? " replace-allowed-ips" : "",
                          p->allowed_ips->len);
        }
}

int network_apply(Network *n, GError **error)
{
        Manager *m = n->manager;
        g_autoptr(WgDevice) d = NULL, current = NULL, change = NULL;
        bool connected = network_is_connected(n);
        int r;

        if (!m->wg)
                return 0;

        r = wg_backend_exists(m->wg, n->ifname);
        if (r < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to look for link %s: %s", n->ifname,
                            g_strerror(-r));
                return r;
        }
        if (r == 0) {
                r = wg_backend_link_create(m->wg, n->ifname, error);
                if (r < 0 && r != -EEXIST)
                        return r;
                g_clear_error(error);
                log_info("Created WireGuard link %s for network %s (%s backend).", n->ifname, n->name,
                         m->wg->vtable->name);
        } else if (!n->link_configured)
                log_info("Adopted WireGuard link %s for network %s.", n->ifname, n->name);

        /* Disconnected: the link stays, with its key and port, but without peers. */
        d = desired_device(n, true, connected, NULL, error);
        if (!d)
                return -EINVAL;
        r = wg_backend_get(m->wg, n->ifname, &current, error);
        if (r < 0)
                return r;
        r = wg_device_diff(current, d, &change);
        if (r < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL,
                            "Failed to compare %s with its configuration: %s", n->ifname, g_strerror(-r));
                return r;
        }
        keep_roamed_endpoints(n, current, change);
        if (!wg_device_is_empty(change)) {
                log_change(n, change);
                r = wg_backend_set(m->wg, change, error);
                if (r < 0)
                        return r;
        }
        if (connected)
                note_applied(n, NULL);

        r = configure_link(n, error);
        if (r < 0)
                return r;
        network_sync_routes(n);
        n->link_configured = true;
        return 0;
}

int network_apply_peers(Network *n, GArray *keys, GError **error)
{
        Manager *m = n->manager;
        g_autoptr(WgDevice) current = NULL, cur_subset = NULL, want = NULL, change = NULL;
        int r;

        if (!m->wg || !network_is_connected(n))
                return 0;
        if (!n->link_configured)
                return network_apply(n, error);

        r = wg_backend_get(m->wg, n->ifname, &current, error);
        if (r == -ENODEV) {
                /* Someone deleted the link: make it again. */
                g_clear_error(error);
                n->link_configured = false;
                return network_apply(n, error);
        }
        if (r < 0)
                return r;

        /* Compare only the peers the message touched, so the change set holds nothing else. */
        cur_subset = wg_device_new(n->ifname);
        for (guint i = 0; i < keys->len; i++) {
                WgPeer *wp = wg_device_find_peer(current, &g_array_index(keys, NmKey, i));
                if (wp && !wg_device_find_peer(cur_subset, &wp->public_key))
                        wg_device_add_peer(cur_subset, wg_peer_copy(wp));
        }
        want = desired_device(n, false, true, keys, error);
        if (!want)
                return -EINVAL;
        r = wg_device_diff(cur_subset, want, &change);
        if (r < 0) {
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL, "Failed to compare peers of %s: %s",
                            n->ifname, g_strerror(-r));
                return r;
        }
        keep_roamed_endpoints(n, cur_subset, change);
        if (!wg_device_is_empty(change)) {
                log_change(n, change);
                r = wg_backend_set(m->wg, change, error);
                if (r < 0)
                        return r;
        }
        note_applied(n, keys);
        network_sync_routes(n);
        return 0;
}

int network_apply_delta(Network *n, const NmMessage *msg, GError **error)
{
        g_autoptr(GArray) keys = NULL;
        int r;

        r = network_state_apply_delta(n->desired, msg, &keys, error);
        if (r < 0)
                return r;
        network_set_serial(n, msg->serial);
        network_sync_peer_objects(n);
        r = network_apply_peers(n, keys, error);
        if (r < 0)
                n->apply_failed = true;
        return r;
}

int network_teardown(Network *n, GError **error)
{
        Manager *m = n->manager;
        int r;

        g_hash_table_remove_all(n->routes);
        n->routes_ifindex = 0;
        n->gateway_families = 0;
        if (!m->wg)
                return 0;
        r = wg_backend_link_delete(m->wg, n->ifname, error);
        if (r == -ENODEV) {
                g_clear_error(error);
                return 0;
        }
        if (r >= 0)
                log_info("Removed WireGuard link %s of network %s.", n->ifname, n->name);
        return r;
}

int network_refresh_stats(Network *n)
{
        Manager *m = n->manager;
        g_autoptr(WgDevice) d = NULL;
        int r;

        if (!m->wg || !n->link_configured)
                return 0;
        r = wg_backend_get(m->wg, n->ifname, &d, NULL);
        if (r < 0)
                return r;
        for (guint i = 0; i < d->peers->len; i++) {
                WgPeer *wp = d->peers->pdata[i];
                Peer *p = network_find_peer(n, &wp->public_key);
                if (p)
                        peer_update_stats(p, wp);
        }
        return network_peers_class_changed(n) ? 1 : 0;
}

/* The time now on both clocks. */
static void clocks(uint64_t *ret_real, uint64_t *ret_mono)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        *ret_real = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        *ret_mono = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

bool network_peers_class_changed(Network *n)
{
        uint64_t real, mono;
        GHashTableIter it;
        gpointer v;

        clocks(&real, &mono);
        g_hash_table_iter_init(&it, n->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Peer *p = v;
                NmPeerStatus st;
                peer_status(p, real, mono, &st);
                if (p->reported_class != PEER_CLASS_NONE &&
                    (int)peer_class(&st, n->desired->failover_after) != p->reported_class)
                        return true;
        }
        return false;
}

void network_add_peer_status(Network *n, NmReport *report)
{
        uint64_t real, mono;
        GHashTableIter it;
        gpointer v;

        if (!network_is_connected(n) || !n->link_configured)
                return;
        clocks(&real, &mono);
        g_hash_table_iter_init(&it, n->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Peer *p = v;
                NmPeerStatus st;
                peer_status(p, real, mono, &st);
                p->reported_class = peer_class(&st, n->desired->failover_after);
                nm_report_add_peer_status(report, n->name, &st);
        }
}
