/* Desired vs current WireGuard state → the smallest change set, so that a change to one peer never
 * disturbs another peer's session (no REPLACE_PEERS, untouched peers left out). */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "wg-internal.h"
#include "wg.h"

static GHashTable *peers_by_key(const WgDevice *d)
{
        GHashTable *h = g_hash_table_new(wg_key_hash, wg_key_equal);
        if (d)
                for (guint i = 0; i < d->peers->len; i++) {
                        WgPeer *p = d->peers->pdata[i];
                        if (!g_hash_table_contains(h, &p->public_key))
                                g_hash_table_insert(h, &p->public_key, p);
                }
        return h;
}

static void copy_allowed_ips(WgPeer *to, const WgPeer *from)
{
        g_array_set_size(to->allowed_ips, 0);
        g_array_append_vals(to->allowed_ips, from->allowed_ips->data, from->allowed_ips->len);
}

static WgPeer *peer_added(const WgPeer *want)
{
        WgPeer *c = wg_peer_new(&want->public_key);
        static const NmKey zero = {};

        /* REPLACE_ALLOWEDIPS on a new peer costs nothing and makes the result exact even if the
         * peer appeared since the device was read. */
        c->flags = WG_PEER_REPLACE_ALLOWEDIPS;
        if (want->flags & WG_PEER_HAS_ENDPOINT && want->endpoint.sa.sa_family != AF_UNSPEC)
                wg_peer_set_endpoint(c, &want->endpoint);
        if (want->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE && want->persistent_keepalive > 0)
                wg_peer_set_persistent_keepalive(c, want->persistent_keepalive);
        if (want->flags & WG_PEER_HAS_PRESHARED_KEY && !nm_key_equal(&want->preshared_key, &zero))
                wg_peer_set_preshared_key(c, &want->preshared_key);
        copy_allowed_ips(c, want);
        return c;
}

/* NULL when nothing differs. */
static WgPeer *peer_updated(const WgPeer *have, const WgPeer *want)
{
        g_autoptr(WgPeer) c = wg_peer_new(&want->public_key);
        bool changed = false;

        c->flags = WG_PEER_UPDATE_ONLY;

        /* The kernel cannot forget an endpoint, so "no endpoint wanted" means "keep what is there"
         * (it may have been learnt from the peer's own packets). */
        if (want->flags & WG_PEER_HAS_ENDPOINT && want->endpoint.sa.sa_family != AF_UNSPEC &&
            !wg_endpoint_equal(&want->endpoint, &have->endpoint)) {
                wg_peer_set_endpoint(c, &want->endpoint);
                changed = true;
        }
        if (want->flags & WG_PEER_HAS_PERSISTENT_KEEPALIVE &&
            want->persistent_keepalive != have->persistent_keepalive) {
                wg_peer_set_persistent_keepalive(c, want->persistent_keepalive);
                changed = true;
        }
        if (want->flags & WG_PEER_HAS_PRESHARED_KEY &&
            !nm_key_equal(&want->preshared_key, &have->preshared_key)) {
                wg_peer_set_preshared_key(c, &want->preshared_key);
                changed = true;
        }
        if (!wg_allowed_ips_equal(want->allowed_ips, have->allowed_ips)) {
                c->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
                copy_allowed_ips(c, want);
                changed = true;
        }
        return changed ? TAKE_PTR(c) : NULL;
}

int wg_device_diff(const WgDevice *current, const WgDevice *desired, WgDevice **ret)
{
        g_autoptr(WgDevice) change = NULL;
        g_autoptr(GHashTable) have = NULL, want = NULL;

        if (!desired || !ret)
                return -EINVAL;

        change = wg_device_new(desired->ifname[0] ? desired->ifname : (current ? current->ifname : NULL));
        change->ifindex = desired->ifindex ? desired->ifindex : (current ? current->ifindex : 0);

        if (desired->flags & WG_DEVICE_HAS_PRIVATE_KEY &&
            (!current || !(current->flags & WG_DEVICE_HAS_PRIVATE_KEY) ||
             !nm_key_equal(&current->private_key, &desired->private_key))) {
                change->private_key = desired->private_key;
                change->public_key = desired->public_key;
                change->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
        }
        /* A wanted port of 0 means "any": whatever the device picked is fine. */
        if (desired->flags & WG_DEVICE_HAS_LISTEN_PORT &&
            (!current || (desired->listen_port != 0 && current->listen_port != desired->listen_port))) {
                change->listen_port = desired->listen_port;
                change->flags |= WG_DEVICE_HAS_LISTEN_PORT;
        }
        if (desired->flags & WG_DEVICE_HAS_FWMARK && (!current || current->fwmark != desired->fwmark)) {
                change->fwmark = desired->fwmark;
                change->flags |= WG_DEVICE_HAS_FWMARK;
        }

        have = peers_by_key(current);
        want = peers_by_key(desired);

        /* Removals first: they free allowed IPs and room before anything is added. */
        if (current)
                for (guint i = 0; i < current->peers->len; i++) {
                        WgPeer *p = current->peers->pdata[i];
                        if (g_hash_table_contains(want, &p->public_key))
                                continue;
                        WgPeer *c = wg_peer_new(&p->public_key);
                        c->flags = WG_PEER_REMOVE_ME;
                        wg_device_add_peer(change, c);
                }

        for (guint i = 0; i < desired->peers->len; i++) {
                WgPeer *w = desired->peers->pdata[i];
                WgPeer *h = g_hash_table_lookup(have, &w->public_key);
                WgPeer *c;

                /* A peer listed twice in desired: the first wins, like a hash lookup would. */
                if (g_hash_table_lookup(want, &w->public_key) != w)
                        continue;
                c = h ? peer_updated(h, w) : peer_added(w);
                if (c)
                        wg_device_add_peer(change, c);
        }

        *ret = TAKE_PTR(change);
        return 0;
}
