/* External client configuration text. */
#include <stdbool.h>
#include <string.h>

#include "extclient-config.h"

static void add_list(GString *s, const char *key, const char *const *v)
{
        if (!v || !v[0])
                return;
        g_string_append_printf(s, "%s = ", key);
        for (guint i = 0; v[i]; i++)
                g_string_append_printf(s, "%s%s", i ? ", " : "", v[i]);
        g_string_append_c(s, '\n');
}

char *extclient_config_text(const ExtClientConfig *c)
{
        GString *s = g_string_sized_new(512);

        g_string_append(s, "[Interface]\n");
        g_string_append_printf(s, "PrivateKey = %s\n", c->private_key);
        add_list(s, "Address", c->addresses);
        if (c->dns && *c->dns)
                g_string_append_printf(s, "DNS = %s\n", c->dns);
        if (c->mtu > 0)
                g_string_append_printf(s, "MTU = %u\n", c->mtu);
        g_string_append(s, "\n[Peer]\n");
        g_string_append_printf(s, "PublicKey = %s\n", c->peer_public_key);
        if (c->endpoint)
                g_string_append_printf(s, "Endpoint = %s\n", c->endpoint);
        add_list(s, "AllowedIPs", c->allowed_ips);
        if (c->keepalive > 0)
                g_string_append_printf(s, "PersistentKeepalive = %u\n", c->keepalive);
        return g_string_free(s, false);
}
