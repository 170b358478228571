/* wgtool: a small command-line front end to netclientd's WireGuard and link library, for tests and
 * benchmarks only (not installed). It knows nothing of network namespaces: run it under
 * `ip netns exec`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-glib/json-glib.h>
#include <sodium.h>

#include "link.h"
#include "log.h"
#include "macro.h"
#include "wg-backend.h"
#include "wg-uapi.h"

static WgBackendOptions arg_options = {.kind = WG_BACKEND_AUTO};

static void help(void)
{
        printf("wgtool [OPTIONS] COMMAND ...\n"
               "  --backend auto|kernel|userspace   --uapi-dir DIR   --wireguard-go PATH   "
               "--wireguard-go-log FILE\n"
               "  --debug\n\n"
               "  up IFNAME [--private-key-file F] [--listen-port P] [--address CIDR]... [--mtu N]\n"
               "  down IFNAME\n"
               "  peer-set IFNAME --public-key K [--endpoint E] [--allowed-ips A[,B...]] [--keepalive S]\n"
               "                  [--preshared-key-file F]\n"
               "  peer-remove IFNAME --public-key K\n"
               "  sync IFNAME FILE      (FILE: "
               "{\"peers\":[{\"public_key\",\"endpoint\",\"allowed_ips\",\"keepalive\"}]})\n"
               "  show IFNAME [--json]\n"
               "  host-addresses [--exclude-prefix P]\n");
}

static int fail(int r, GError *error, const char *what)
{
        fprintf(stderr, "wgtool: %s: %s\n", what, error ? error->message : g_strerror(-r));
        return 1;
}

static int read_key_file(const char *path, NmKey *ret)
{
        _cleanup_secret_ char *s = NULL;
        GError *e = NULL;

        if (!g_file_get_contents(path, &s, NULL, &e)) {
                fprintf(stderr, "wgtool: %s\n", e->message);
                g_error_free(e);
                return -ENOENT;
        }
        g_strstrip(s);
        if (nm_key_from_base64(s, ret) < 0) {
                fprintf(stderr, "wgtool: \"%s\" does not hold a base64 WireGuard key (44 characters)\n",
                        path);
                return -EINVAL;
        }
        return 0;
}

static int parse_public_key(const char *s, NmKey *ret)
{
        if (!s || nm_key_from_base64(s, ret) < 0) {
                fprintf(stderr,
                        "wgtool: invalid public key \"%.60s\": 44 characters of base64 are accepted\n",
                        strempty(s));
                return -EINVAL;
        }
        return 0;
}

static int add_allowed_ips(WgPeer *p, const char *list)
{
        g_auto(GStrv) parts = g_strsplit(list, ",", -1);
        for (char **a = parts; *a; a++) {
                g_autoptr(GError) e = NULL;
                g_strstrip(*a);
                if (!**a)
                        continue;
                if (wg_peer_add_allowed_ip_string(p, *a, &e) < 0) {
                        fprintf(stderr, "wgtool: %s\n", e->message);
                        return -EINVAL;
                }
        }
        return 0;
}

static int cmd_up(WgBackend *b, int argc, char **argv)
{
        /* clang-format off */
        static const struct option opts[] = {
                {"private-key-file", required_argument, NULL, 'k'},
                {"listen-port", required_argument, NULL, 'p'},
                {"address", required_argument, NULL, 'a'},
                {"mtu", required_argument, NULL, 'm'},
                {},
        };
        /* clang-format on */
        g_autoptr(WgDevice) d = NULL;
        g_autoptr(GArray) addrs = g_array_new(FALSE, FALSE, sizeof(NmPrefix));
        g_autoptr(GError) e = NULL;
        struct nl_sock *rtnl = NULL;
        const char *ifname;
        unsigned mtu = 0;
        int c, r;

        if (argc < 2)
                return fail(-EINVAL, NULL, "up needs an interface name");
        ifname = argv[1];
        d = wg_device_new(ifname);
        optind = 0; /* re-initialise getopt; argv[0] is the interface name */
        while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) >= 0)
                switch (c) {
                case 'k': {
                        NmKey k;
                        if (read_key_file(optarg, &k) < 0)
                                return 1;
                        if (wg_device_set_private_key(d, &k) < 0)
                                return fail(-EINVAL, NULL, "invalid private key");
                        sodium_memzero(&k, sizeof(k));
                        break;
                }
                case 'p':
                        wg_device_set_listen_port(d, (uint16_t)strtoul(optarg, NULL, 10));
                        break;
                case 'a': {
                        NmPrefix p;
                        if (nm_prefix_parse(optarg, &p, &e) < 0)
                                return fail(-EINVAL, e, "--address");
                        g_array_append_val(addrs, p);
                        break;
                }
                case 'm':
                        mtu = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 1;
                }

        r = wg_backend_link_create(b, ifname, &e);
        if (r < 0)
                return fail(r, e, "up");
        r = wg_backend_set(b, d, &e);
        if (r < 0)
                return fail(r, e, "up");

        r = link_rtnl_open(&rtnl);
        if (r < 0)
                return fail(r, NULL, "rtnetlink");
        for (guint i = 0; i < addrs->len; i++) {
                r = link_address_add(rtnl, ifname, &g_array_index(addrs, NmPrefix, i));
                if (r < 0) {
                        nl_socket_free(rtnl);
                        return fail(r, NULL, "adding an address");
                }
        }
        if (mtu > 0 && (r = link_set_mtu(rtnl, ifname, mtu)) < 0) {
                nl_socket_free(rtnl);
                return fail(r, NULL, "setting the MTU");
        }
        r = link_set_up(rtnl, ifname, true);
        nl_socket_free(rtnl);
        if (r < 0)
                return fail(r, NULL, "setting the link up");
        printf("{\"ifname\":\"%s\",\"backend\":\"%s\"}\n", ifname, b->vtable->name);
        return 0;
}

static int cmd_down(WgBackend *b, int argc, char **argv)
{
        g_autoptr(GError) e = NULL;
        int r;

        if (argc < 2)
                return fail(-EINVAL, NULL, "down needs an interface name");
        r = wg_backend_link_delete(b, argv[1], &e);
        return r < 0 ? fail(r, e, "down") : 0;
}

/* Applies `desired` as a whole: read, diff, write the difference; prints what changed. */
static int apply(WgBackend *b, WgDevice *desired)
{
        g_autoptr(WgDevice) current = NULL, change = NULL;
        g_autoptr(GError) e = NULL;
        unsigned added = 0, updated = 0, removed = 0;
        int r;

        r = wg_backend_get(b, desired->ifname, &current, &e);
        if (r < 0)
                return fail(r, e, "reading the device");
        r = wg_device_diff(current, desired, &change);
        if (r < 0)
                return fail(r, NULL, "diff");
        for (guint i = 0; i < change->peers->len; i++) {
                WgPeer *p = change->peers->pdata[i];
                if (p->flags & WG_PEER_REMOVE_ME)
                        removed++;
                else if (p->flags & WG_PEER_UPDATE_ONLY)
                        updated++;
                else
                        added++;
        }
        r = wg_backend_set(b, change, &e);
        if (r < 0)
                return fail(r, e, "writing the device");
        printf("{\"added\":%u,\"updated\":%u,\"removed\":%u,\"replace_peers\":%s}\n", added, updated,
               removed, change->flags & WG_DEVICE_REPLACE_PEERS ? "true" : "false");
        return 0;
}

/* The device as it is, as a desired state: peers keep exactly what they have. */
static WgDevice *desired_from_current(const WgDevice *cur)
{
        WgDevice *d = wg_device_copy(cur);
        d->flags = 0;
        return d;
}

static int cmd_peer_set(WgBackend *b, int argc, char **argv, bool remove)
{
        /* clang-format off */
        static const struct option opts[] = {
                {"public-key", required_argument, NULL, 'k'},
                {"endpoint", required_argument, NULL, 'e'},
                {"allowed-ips", required_argument, NULL, 'a'},
                {"keepalive", required_argument, NULL, 'K'},
                {"preshared-key-file", required_argument, NULL, 'P'},
                {},
        };
        /* clang-format on */
        g_autoptr(WgDevice) current = NULL, desired = NULL;
        g_autoptr(GError) e = NULL;
        const char *key_s = NULL, *endpoint = NULL, *allowed = NULL, *psk_file = NULL;
        const char *ifname;
        long keepalive = -1;
        NmKey key;
        int c, r;

        if (argc < 2)
                return fail(-EINVAL, NULL, "an interface name is needed");
        ifname = argv[1];
        optind = 0; /* re-initialise getopt; argv[0] is the interface name */
        while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_s = optarg;
                        break;
                case 'e':
                        endpoint = optarg;
                        break;
                case 'a':
                        allowed = optarg;
                        break;
                case 'K':
                        keepalive = strtol(optarg, NULL, 10);
                        break;
                case 'P':
                        psk_file = optarg;
                        break;
                default:
                        return 1;
                }
        if (parse_public_key(key_s, &key) < 0)
                return 1;

        r = wg_backend_get(b, ifname, &current, &e);
        if (r < 0)
                return fail(r, e, "reading the device");
        desired = desired_from_current(current);

        for (guint i = 0; i < desired->peers->len; i++)
                if (nm_key_equal(&((WgPeer *)desired->peers->pdata[i])->public_key, &key)) {
                        g_ptr_array_remove_index(desired->peers, i);
                        break;
                }
        if (!remove) {
                WgPeer *old = wg_device_find_peer(current, &key);
                WgPeer *p = old ? wg_peer_copy(old) : wg_peer_new(&key);

                wg_device_add_peer(desired, p);
                p->flags &= ~(WG_PEER_HAS_PRESHARED_KEY);
                if (endpoint) {
                        WgEndpoint ep;
                        if (wg_endpoint_parse(endpoint, &ep, &e) < 0)
                                return fail(-EINVAL, e, "--endpoint");
                        wg_peer_set_endpoint(p, &ep);
                }
                if (allowed) {
                        g_array_set_size(p->allowed_ips, 0);
                        if (add_allowed_ips(p, allowed) < 0)
                                return 1;
                }
                if (keepalive >= 0)
                        wg_peer_set_persistent_keepalive(p, (uint16_t)keepalive);
                if (psk_file) {
                        NmKey psk;
                        if (read_key_file(psk_file, &psk) < 0)
                                return 1;
                        wg_peer_set_preshared_key(p, &psk);
                        sodium_memzero(&psk, sizeof(psk));
                }
        }
        return apply(b, desired);
}

static int cmd_sync(WgBackend *b, int argc, char **argv)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(WgDevice) desired = NULL;
        g_autoptr(GError) e = NULL;
        JsonObject *root;
        JsonArray *peers;

        if (argc < 3)
                return fail(-EINVAL, NULL, "sync needs an interface name and a file");
        if (!json_parser_load_from_file(parser, argv[2], &e))
                return fail(-EINVAL, e, argv[2]);
        if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
                return fail(-EINVAL, NULL, "the file must hold a JSON object");
        root = json_node_get_object(json_parser_get_root(parser));
        peers = json_object_has_member(root, "peers") ? json_object_get_array_member(root, "peers") : NULL;
        if (!peers)
                return fail(-EINVAL, NULL, "the file needs a \"peers\" array");

        desired = wg_device_new(argv[1]);
        for (guint i = 0; i < json_array_get_length(peers); i++) {
                JsonObject *o = json_array_get_object_element(peers, i);
                NmKey k;
                WgPeer *p;

                if (!o || parse_public_key(json_object_get_string_member_with_default(o, "public_key", NULL),
                                           &k) < 0)
                        return 1;
                p = wg_device_add_peer(desired, wg_peer_new(&k));
                const char *ep = json_object_get_string_member_with_default(o, "endpoint", NULL);
                if (ep) {
                        WgEndpoint we;
                        if (wg_endpoint_parse(ep, &we, &e) < 0)
                                return fail(-EINVAL, e, "endpoint");
                        wg_peer_set_endpoint(p, &we);
                }
                if (json_object_has_member(o, "keepalive"))
                        wg_peer_set_persistent_keepalive(
                                p, (uint16_t)json_object_get_int_member(o, "keepalive"));
                JsonArray *ips = json_object_has_member(o, "allowed_ips")
                                         ? json_object_get_array_member(o, "allowed_ips")
                                         : NULL;
                for (guint j = 0; ips && j < json_array_get_length(ips); j++) {
                        const char *s = json_array_get_string_element(ips, j);
                        if (!s || wg_peer_add_allowed_ip_string(p, s, &e) < 0)
                                return fail(-EINVAL, e, "allowed_ips");
                }
        }
        return apply(b, desired);
}

static void print_json(const WgDevice *d)
{
        g_autoptr(JsonBuilder) jb = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *out = NULL;
        char k[NM_KEY_B64_LEN + 1];

        json_builder_begin_object(jb);
        json_builder_set_member_name(jb, "ifname");
        json_builder_add_string_value(jb, d->ifname);
        json_builder_set_member_name(jb, "public_key");
        if (d->flags & WG_DEVICE_HAS_PUBLIC_KEY) {
                nm_key_to_base64(&d->public_key, k);
                json_builder_add_string_value(jb, k);
        } else
                json_builder_add_null_value(jb);
        json_builder_set_member_name(jb, "listen_port");
        json_builder_add_int_value(jb, d->listen_port);
        json_builder_set_member_name(jb, "fwmark");
        json_builder_add_int_value(jb, d->fwmark);
        json_builder_set_member_name(jb, "peers");
        json_builder_begin_array(jb);
        for (guint i = 0; i < d->peers->len; i++) {
                const WgPeer *p = d->peers->pdata[i];
                g_autofree char *ep = wg_endpoint_to_string(&p->endpoint);

                json_builder_begin_object(jb);
                nm_key_to_base64(&p->public_key, k);
                json_builder_set_member_name(jb, "public_key");
                json_builder_add_string_value(jb, k);
                json_builder_set_member_name(jb, "endpoint");
                if (*ep)
                        json_builder_add_string_value(jb, ep);
                else
                        json_builder_add_null_value(jb);
                json_builder_set_member_name(jb, "allowed_ips");
                json_builder_begin_array(jb);
                for (guint j = 0; j < p->allowed_ips->len; j++) {
                        g_autofree char *s =
                                nm_prefix_to_string(&g_array_index(p->allowed_ips, NmPrefix, j));
                        json_builder_add_string_value(jb, s);
                }
                json_builder_end_array(jb);
                json_builder_set_member_name(jb, "persistent_keepalive");
                json_builder_add_int_value(jb, p->persistent_keepalive);
                json_builder_set_member_name(jb, "has_preshared_key");
                static const NmKey zero = {};
                json_builder_add_boolean_value(jb, !nm_key_equal(&p->preshared_key, &zero));
                json_builder_set_member_name(jb, "last_handshake_sec");
                json_builder_add_int_value(jb, (gint64)p->last_handshake.tv_sec);
                json_builder_set_member_name(jb, "last_handshake_nsec");
                json_builder_add_int_value(jb, (gint64)p->last_handshake.tv_nsec);
                json_builder_set_member_name(jb, "rx_bytes");
                json_builder_add_int_value(jb, (gint64)p->rx_bytes);
                json_builder_set_member_name(jb, "tx_bytes");
                json_builder_add_int_value(jb, (gint64)p->tx_bytes);
                json_builder_set_member_name(jb, "protocol_version");
                json_builder_add_int_value(jb, p->protocol_version);
                json_builder_end_object(jb);
        }
        json_builder_end_array(jb);
        json_builder_end_object(jb);

        root = json_builder_get_root(jb);
        json_generator_set_root(gen, root);
        out = json_generator_to_data(gen, NULL);
        printf("%s\n", out);
}

static int cmd_show(WgBackend *b, int argc, char **argv)
{
        g_autoptr(WgDevice) d = NULL;
        g_autoptr(GError) e = NULL;
        int r;

        if (argc < 2)
                return fail(-EINVAL, NULL, "show needs an interface name");
        r = wg_backend_get(b, argv[1], &d, &e);
        if (r < 0)
                return fail(r, e, "show");
        if (argc > 2 && streq0(argv[2], "--json")) {
                print_json(d);
                return 0;
        }
        char k[NM_KEY_B64_LEN + 1];
        nm_key_to_base64(&d->public_key, k);
        printf("interface: %s\n  public key: %s\n  listening port: %u\n", d->ifname, k, d->listen_port);
        for (guint i = 0; i < d->peers->len; i++) {
                const WgPeer *p = d->peers->pdata[i];
                g_autofree char *ep = wg_endpoint_to_string(&p->endpoint);
                nm_key_to_base64(&p->public_key, k);
                printf("\npeer: %s\n  endpoint: %s\n  allowed ips:", k, *ep ? ep : "(none)");
                for (guint j = 0; j < p->allowed_ips->len; j++) {
                        g_autofree char *s =
                                nm_prefix_to_string(&g_array_index(p->allowed_ips, NmPrefix, j));
                        printf("%s %s", j ? "," : "", s);
                }
                printf("\n");
        }
        return 0;
}

static int cmd_host_addresses(int argc, char **argv)
{
        g_autoptr(GArray) a = NULL;
        struct nl_sock *rtnl = NULL;
        const char *exclude = NULL;
        int r;

        if (argc > 2 && streq0(argv[1], "--exclude-prefix"))
                exclude = argv[2];
        r = link_rtnl_open(&rtnl);
        if (r < 0)
                return fail(r, NULL, "rtnetlink");
        r = link_list_host_addresses(rtnl, exclude, &a);
        nl_socket_free(rtnl);
        if (r < 0)
                return fail(r, NULL, "listing addresses");
        for (guint i = 0; i < a->len; i++) {
                LinkAddress *la = &g_array_index(a, LinkAddress, i);
                g_autofree char *s = nm_prefix_to_string(&la->address);
                printf("%s %s\n", la->ifname, s);
        }
        return 0;
}

int main(int argc, char **argv)
{
        /* clang-format off */
        static const struct option opts[] = {
                {"backend", required_argument, NULL, 'b'},
                {"uapi-dir", required_argument, NULL, 'u'},
                {"wireguard-go", required_argument, NULL, 'w'},
                {"wireguard-go-log", required_argument, NULL, 'l'},
                {"debug", no_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        /* clang-format on */
        g_autoptr(WgBackend) b = NULL;
        g_autoptr(GError) e = NULL;
        const char *cmd;
        int c, r;

        if (nm_crypto_init() < 0)
                return 1;
        /* Options before the command only: "+" stops at the first non-option. */
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) >= 0)
                switch (c) {
                case 'b':
                        if (wg_backend_kind_from_string(optarg, &arg_options.kind, &e) < 0)
                                return fail(-EINVAL, e, "--backend");
                        break;
                case 'u':
                        arg_options.uapi_dir = optarg;
                        break;
                case 'w':
                        arg_options.wireguard_go = optarg;
                        break;
                case 'l':
                        arg_options.wireguard_go_log = optarg;
                        break;
                case 'd':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 1;
                }
        if (optind >= argc) {
                help();
                return 1;
        }
        cmd = argv[optind];
        argc -= optind;
        argv += optind;

        if (streq0(cmd, "host-addresses"))
                return cmd_host_addresses(argc, argv);

        r = wg_backend_new(&arg_options, &b, &e);
        if (r < 0)
                return fail(r, e, "backend");

        if (streq0(cmd, "up"))
                return cmd_up(b, argc, argv);
        if (streq0(cmd, "down"))
                return cmd_down(b, argc, argv);
        if (streq0(cmd, "peer-set"))
                return cmd_peer_set(b, argc, argv, false);
        if (streq0(cmd, "peer-remove"))
                return cmd_peer_set(b, argc, argv, true);
        if (streq0(cmd, "sync"))
                return cmd_sync(b, argc, argv);
        if (streq0(cmd, "show"))
                return cmd_show(b, argc, argv);
        fprintf(stderr, "wgtool: unknown command \"%s\"\n", cmd);
        help();
        return 1;
}
