/* Shows the joined networks in NetworkManager, when NetworkManager runs and our VPN plugin
 * (NetworkManager-netmaker) is installed: one VPN profile per joined network ("office (Netmaker)",
 * type netmaker, made on join, removed on leave), activated whenever the network is connected, so
 * that nmcli, nm-applet and GNOME's network menu show what netclient shows. NetworkManager only
 * mirrors: the plugin calls back into netclientd, which keeps the links, addresses, routes and DNS
 * (docs/desktop.md). Every call is asynchronous and nothing starts NetworkManager. */
#pragma once

#include <stdbool.h>

#include "manager.h"

#define NETWORKMANAGER_VPN_SERVICE "org.freedesktop.NetworkManager.netmaker"

typedef struct NetworkManager NetworkManager;

/* Watches NetworkManager's name and primary connection on the manager's (system) bus. */
int networkmanager_new(Manager *m, NetworkManager **ret);
/* Forgets everything without touching the profiles (they outlive the daemon). */
NetworkManager *networkmanager_free(NetworkManager *nm);

/* The joined networks or their connection changed: brings the profiles in line soon (debounced). */
void networkmanager_sync(NetworkManager *nm);

/* The profile's UUID for a network: the same on every host and every run ("netmaker-network:NAME"
 * hashed into a UUID), so a profile is found again after restarts. */
char *networkmanager_profile_uuid(const char *network);
/* Whether NetworkManager would find our VPN plugin (its .name file in /usr/lib/NetworkManager/VPN or
 * /etc/NetworkManager/VPN; $NETCLIENTD_NM_VPN_DIR replaces both, for tests). */
bool networkmanager_plugin_installed(void);
