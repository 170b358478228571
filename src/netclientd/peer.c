/* A peer of one network: the server's description and the device's statistics. */
#include <errno.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "peer.h"
#include "status.h"

int peer_new(Network *n, const NmPeer *desired, Peer **ret)
{
        g_autofree char *id = NULL;
        char hex[NM_KEY_HEX_LEN + 1];
        Peer *p;
        int r;

        /* Every peer has a host id from the server; fall back to the key so a path always exists. */
        if (desired->host_id && *desired->host_id)
                id = g_strdup(desired->host_id);
        else {
                nm_key_to_hex(&desired->public_key, hex);
                id = g_strdup(hex);
        }

        p = g_new0(Peer, 1);
        p->network = n;
        p->desired = nm_peer_copy(desired);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        p->created_usec = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
        r = sd_bus_path_encode_many(&p->path, NETCLIENT_NETWORK_PREFIX "/%/peer/%", n->name, id);
        if (r < 0) {
                peer_free(p);
                return r;
        }
        if (n->manager->bus && n->exported) {
                r = peer_bus_export(p);
                if (r < 0)
                        log_warning_errno(r, "Failed to export peer %s of %s on the bus: %m", id, n->name);
        }
        status_peer_changed(p);
        *ret = p;
        return 0;
}

Peer *peer_free(Peer *p)
{
        if (!p)
                return NULL;
        if (p->desired)
                status_peer_removed(p);
        peer_bus_unexport(p);
        nm_peer_free(p->desired);
        g_free(p->live_endpoint);
        g_free(p->applied_endpoint);
        free(p->path);
        g_free(p);
        return NULL;
}

const char *peer_endpoint(Peer *p)
{
        if (p->live_endpoint && *p->live_endpoint)
                return p->live_endpoint;
        return strempty(p->desired->endpoint);
}

static void emit(Peer *p, GPtrArray *changed)
{
        sd_bus *bus = p->network->manager->bus;

        if (!bus || !p->exported || changed->len == 0)
                return;
        g_ptr_array_add(changed, NULL);
        (void)sd_bus_emit_properties_changed_strv(bus, p->path, NETCLIENT_PEER_INTERFACE,
                                                  (char **)changed->pdata);
}

static gboolean strv_equal0(char **a, char **b)
{
        if (!a || !b)
                return (!a || !*a) && (!b || !*b);
        return g_strv_equal((const char *const *)a, (const char *const *)b);
}

void peer_set_desired(Peer *p, const NmPeer *desired)
{
        g_autoptr(GPtrArray) changed = g_ptr_array_new();
        const char *old_endpoint = peer_endpoint(p);
        bool endpoint_changed;

        if (!streq0(p->desired->name, desired->name))
                g_ptr_array_add(changed, "Name");
        if (!nm_key_equal(&p->desired->public_key, &desired->public_key))
                g_ptr_array_add(changed, "PublicKey");
        if (!strv_equal0(p->desired->allowed_ips, desired->allowed_ips))
                g_ptr_array_add(changed, "AllowedIPs");
        if (!streq0(p->desired->ipv4, desired->ipv4) || !streq0(p->desired->ipv6, desired->ipv6))
                g_ptr_array_add(changed, "Addresses");
        if (p->desired->external != desired->external)
                g_ptr_array_add(changed, "External");
        if (!streq0(p->desired->node_id, desired->node_id))
                g_ptr_array_add(changed, "NodeId");
        if (p->desired->internet_gateway != desired->internet_gateway)
                g_ptr_array_add(changed, "InternetGateway");
        endpoint_changed = !p->live_endpoint && !streq0(old_endpoint, strempty(desired->endpoint));

        nm_peer_free(p->desired);
        p->desired = nm_peer_copy(desired);
        if (endpoint_changed)
                g_ptr_array_add(changed, "Endpoint");
        if (changed->len > 0)
                status_peer_changed(p);
        emit(p, changed);
}

void peer_update_stats(Peer *p, const WgPeer *wp)
{
        g_autoptr(GPtrArray) changed = g_ptr_array_new();
        uint64_t hs = 0;

        if (wp->last_handshake.tv_sec > 0 || wp->last_handshake.tv_nsec > 0)
                hs = (uint64_t)wp->last_handshake.tv_sec * 1000000ULL +
                     (uint64_t)wp->last_handshake.tv_nsec / 1000ULL;
        if (hs != p->latest_handshake_usec) {
                p->latest_handshake_usec = hs;
                g_ptr_array_add(changed, "LatestHandshake");
        }
        if (wp->rx_bytes != p->rx_bytes) {
                p->rx_bytes = wp->rx_bytes;
                g_ptr_array_add(changed, "RxBytes");
        }
        if (wp->tx_bytes != p->tx_bytes) {
                p->tx_bytes = wp->tx_bytes;
                g_ptr_array_add(changed, "TxBytes");
        }
        g_autofree char *ep = wg_endpoint_to_string(&wp->endpoint);
        if (ep && *ep && !streq0(ep, p->live_endpoint)) {
                bool visible = !streq0(ep, peer_endpoint(p));
                g_free(p->live_endpoint);
                p->live_endpoint = TAKE_PTR(ep);
                if (visible) {
                        g_ptr_array_add(changed, "Endpoint");
                        status_peer_changed(p);
                }
        }
        emit(p, changed);
        status_peer_refresh_online(p);
}

/* WireGuard's REJECT_AFTER_TIME: a session older than this is gone. */
#define SESSION_LIFETIME_SEC 180

void peer_status(Peer *p, uint64_t now_usec, uint64_t mono_usec, NmPeerStatus *ret)
{
        *ret = (NmPeerStatus){
                .public_key = p->desired->public_key,
                .handshake = -1,
                .since = mono_usec > p->created_usec ? (mono_usec - p->created_usec) / 1000000ULL : 0,
                .rx_bytes = p->rx_bytes,
                .tx_bytes = p->tx_bytes,
        };
        if (p->latest_handshake_usec > 0)
                ret->handshake = now_usec > p->latest_handshake_usec
                                         ? (gint64)((now_usec - p->latest_handshake_usec) / 1000000ULL)
                                         : 0;
}

PeerClass peer_class(const NmPeerStatus *st, unsigned failover_after)
{
        if (st->handshake >= 0 && st->handshake <= SESSION_LIFETIME_SEC)
                return PEER_CLASS_SESSION;
        if (failover_after > 0) {
                guint64 down = st->handshake < 0 ? st->since : (guint64)st->handshake - SESSION_LIFETIME_SEC;
                if (down >= failover_after)
                        return PEER_CLASS_DOWN_LONG;
        }
        return PEER_CLASS_NO_SESSION;
}

bool peer_keep_device_endpoint(const char *applied, const char *desired, const WgEndpoint *device,
                               int64_t handshake_sec, int64_t now_sec)
{
        bool session = handshake_sec > 0 && now_sec - handshake_sec <= SESSION_LIFETIME_SEC;
        WgEndpoint written;

        if (!device || device->sa.sa_family == AF_UNSPEC)
                return false;
        if (!applied)
                return session;
        if (streq0(applied, desired))
                return true;
        return session &&
               (wg_endpoint_parse(applied, &written, NULL) < 0 || !wg_endpoint_equal(&written, device));
}
