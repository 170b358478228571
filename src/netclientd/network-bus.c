/* The org.netmaker.Client.Network interface: one object per joined network. */
#include <errno.h>

#include "log.h"
#include "macro.h"
#include "network.h"
#include "network-dns.h"
#include "networkmanager.h"
#include "status.h"

static int prop_string(sd_bus_message *reply, const char *s)
{
        return sd_bus_message_append(reply, "s", strempty(s));
}

static int prop_name(sd_bus *bus, const char *path, const char *iface, const char *prop,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return prop_string(reply, n->name);
}

static int prop_interface(sd_bus *bus, const char *path, const char *iface, const char *prop,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return prop_string(reply, n->ifname);
}

static int prop_node_id(sd_bus *bus, const char *path, const char *iface, const char *prop,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return prop_string(reply, n->desired->node_id);
}

static int prop_addresses(sd_bus *bus, const char *path, const char *iface, const char *prop,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        g_auto(GStrv) a = network_addresses(n);
        return sd_bus_message_append_strv(reply, a);
}

static int prop_listen_port(sd_bus *bus, const char *path, const char *iface, const char *prop,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return sd_bus_message_append(reply, "q", (uint16_t)n->desired->listen_port);
}

static int prop_mtu(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t)n->desired->mtu);
}

static int prop_dns_domain(sd_bus *bus, const char *path, const char *iface, const char *prop,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return prop_string(reply, n->desired->dns_domain);
}

static int prop_dns_zone(sd_bus *bus, const char *path, const char *iface, const char *prop,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return prop_string(reply, network_dns_zone_name(userdata));
}

static int prop_dns_state(sd_bus *bus, const char *path, const char *iface, const char *prop,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return prop_string(reply, network_dns_state(userdata));
}

static int prop_serial(sd_bus *bus, const char *path, const char *iface, const char *prop,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return sd_bus_message_append(reply, "t", (uint64_t)n->serial);
}

static int prop_connected(sd_bus *bus, const char *path, const char *iface, const char *prop,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return sd_bus_message_append(reply, "b", (int)network_is_connected(n));
}

static int prop_peers(sd_bus *bus, const char *path, const char *iface, const char *prop,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        g_auto(GStrv) paths = network_peer_paths(n);
        int r = sd_bus_message_open_container(reply, 'a', "o");
        for (char **p = paths; r >= 0 && *p; p++)
                r = sd_bus_message_append(reply, "o", *p);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int prop_roles(sd_bus *bus, const char *path, const char *iface, const char *prop,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        g_auto(GStrv) names = network_role_names(n);
        return sd_bus_message_append_strv(reply, names);
}

static int prop_egress_ranges(sd_bus *bus, const char *path, const char *iface, const char *prop,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        char **r = n->desired->roles.egress_ranges;
        return sd_bus_message_append_strv(reply, r ? r : (char *[]){NULL});
}

static int prop_egress_nat(sd_bus *bus, const char *path, const char *iface, const char *prop,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return sd_bus_message_append(reply, "b", (int)n->desired->roles.egress_nat);
}

static int prop_relayed_by(sd_bus *bus, const char *path, const char *iface, const char *prop,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return prop_string(reply, n->desired->roles.relayed_by);
}

static int prop_internet_gateway_via(sd_bus *bus, const char *path, const char *iface, const char *prop,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Network *n = userdata;
        return prop_string(reply, n->desired->roles.internet_gateway_via);
}

static const sd_bus_vtable network_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", prop_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Interface", "s", prop_interface, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NodeId", "s", prop_node_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Addresses", "as", prop_addresses, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ListenPort", "q", prop_listen_port, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MTU", "u", prop_mtu, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DNSDomain", "s", prop_dns_domain, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DNSZone", "s", prop_dns_zone, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DNSState", "s", prop_dns_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Serial", "t", prop_serial, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Connected", "b", prop_connected, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Peers", "ao", prop_peers, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Roles", "as", prop_roles, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EgressRanges", "as", prop_egress_ranges, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EgressNAT", "b", prop_egress_nat, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RelayedBy", "s", prop_relayed_by, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("InternetGatewayVia", "s", prop_internet_gateway_via, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

int network_bus_export(Network *n)
{
        sd_bus *bus = n->manager->bus;
        int r;

        if (!bus || n->exported)
                return 0;
        r = sd_bus_add_object_vtable(bus, &n->slot, n->path, NETCLIENT_NETWORK_INTERFACE, network_vtable, n);
        if (r < 0)
                return r;
        n->exported = true;
        status_network_added(n);
        networkmanager_sync(n->manager->networkmanager);
        (void)sd_bus_emit_object_added(bus, n->path);
        return 0;
}

void network_bus_unexport(Network *n)
{
        if (!n->exported)
                return;
        (void)sd_bus_emit_object_removed(n->manager->bus, n->path);
        n->slot = sd_bus_slot_unref(n->slot);
        n->exported = false;
        status_network_removed(n);
        networkmanager_sync(n->manager->networkmanager);
}
