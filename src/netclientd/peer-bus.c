/* The org.netmaker.Client.Peer interface: one object per peer of a joined network. */
#include <errno.h>

#include "log.h"
#include "macro.h"
#include "peer.h"

static int prop_name(sd_bus *bus, const char *path, const char *iface, const char *prop,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "s", strempty(p->desired->name));
}

static int prop_host_id(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "s", strempty(p->desired->host_id));
}

static int prop_network(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "o", p->network->path);
}

static int prop_public_key(sd_bus *bus, const char *path, const char *iface, const char *prop,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        char b[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(&p->desired->public_key, b);
        return sd_bus_message_append(reply, "s", b);
}

static int prop_endpoint(sd_bus *bus, const char *path, const char *iface, const char *prop,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "s", peer_endpoint(p));
}

static int prop_allowed_ips(sd_bus *bus, const char *path, const char *iface, const char *prop,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append_strv(reply, p->desired->allowed_ips ? p->desired->allowed_ips
                                                                         : (char *[]){NULL});
}

static int prop_addresses(sd_bus *bus, const char *path, const char *iface, const char *prop,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        char *a[3] = {};
        size_t i = 0;
        if (p->desired->ipv4)
                a[i++] = p->desired->ipv4;
        if (p->desired->ipv6)
                a[i++] = p->desired->ipv6;
        return sd_bus_message_append_strv(reply, a);
}

static int prop_u64(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        uint64_t v = streq0(prop, "LatestHandshake") ? p->latest_handshake_usec
                     : streq0(prop, "RxBytes")       ? p->rx_bytes
                                                     : p->tx_bytes;
        return sd_bus_message_append(reply, "t", v);
}

static int prop_external(sd_bus *bus, const char *path, const char *iface, const char *prop,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "b", (int)p->desired->external);
}

static int prop_node_id(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "s", strempty(p->desired->node_id));
}

static int prop_internet_gateway(sd_bus *bus, const char *path, const char *iface, const char *prop,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Peer *p = userdata;
        return sd_bus_message_append(reply, "b", (int)p->desired->internet_gateway);
}

static const sd_bus_vtable peer_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", prop_name, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("HostId", "s", prop_host_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Network", "o", prop_network, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PublicKey", "s", prop_public_key, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Endpoint", "s", prop_endpoint, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AllowedIPs", "as", prop_allowed_ips, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Addresses", "as", prop_addresses, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LatestHandshake", "t", prop_u64, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RxBytes", "t", prop_u64, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TxBytes", "t", prop_u64, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("External", "b", prop_external, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NodeId", "s", prop_node_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("InternetGateway", "b", prop_internet_gateway, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

int peer_bus_export(Peer *p)
{
        sd_bus *bus = p->network->manager->bus;
        int r;

        if (!bus || p->exported)
                return 0;
        r = sd_bus_add_object_vtable(bus, &p->slot, p->path, NETCLIENT_PEER_INTERFACE, peer_vtable, p);
        if (r < 0)
                return r;
        p->exported = true;
        (void)sd_bus_emit_object_added(bus, p->path);
        return 0;
}

void peer_bus_unexport(Peer *p)
{
        if (!p->exported)
                return;
        (void)sd_bus_emit_object_removed(p->network->manager->bus, p->path);
        p->slot = sd_bus_slot_unref(p->slot);
        p->exported = false;
}
