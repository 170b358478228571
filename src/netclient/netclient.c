/* netclient: the command-line client of netclientd, talking to org.netmaker.Client on the system bus.
 *
 * Exit codes (stable, for scripts):
 *   0  success
 *   1  the daemon refused or the operation failed (its message is printed)
 *   2  usage error (unknown command or option, missing argument)
 *   3  netclientd cannot be reached (no system bus, or the service is not running)
 *   4  not authorised (polkit said no, or wants a password nobody typed)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>

#include "macro.h"

#define BUS_NAME      "org.netmaker.Client"
#define OBJECT_PATH   "/org/netmaker/Client"
#define IFACE         "org.netmaker.Client"
#define NETWORK_IFACE "org.netmaker.Client.Network"
#define PEER_IFACE    "org.netmaker.Client.Peer"

#define JOIN_TIMEOUT_USEC (180 * 1000000ULL)
#define CALL_TIMEOUT_USEC (90 * 1000000ULL)

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_DENIED = 4,
};

static bool arg_json = false;
static bool arg_ask_password = true;
static const char *arg_token = NULL;
static const char *arg_name = NULL;
static unsigned arg_port = 0;

/* ---- properties ------------------------------------------------------------------------------------ */

typedef struct Prop {
        char type; /* 's' (also 'o'), 'u' (any unsigned), 'b', 'a' (array of strings) */
        char *s;
        uint64_t u;
        bool b;
        char **strv;
} Prop;

static void prop_free(gpointer p)
{
        Prop *x = p;
        g_free(x->s);
        g_strfreev(x->strv);
        g_free(x);
}

typedef struct Object {
        char *path;
        char *iface; /* ours: Client, Network or Peer */
        GHashTable *props;
} Object;

static void object_free(gpointer p)
{
        Object *o = p;
        g_free(o->path);
        g_free(o->iface);
        g_hash_table_unref(o->props);
        g_free(o);
}

static Object *object_new(const char *path)
{
        Object *o = g_new0(Object, 1);
        o->path = g_strdup(path);
        o->props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, prop_free);
        return o;
}

static const char *get_s(Object *o, const char *name)
{
        Prop *p = o ? g_hash_table_lookup(o->props, name) : NULL;
        return p && p->type == 's' ? p->s : "";
}

static uint64_t get_u(Object *o, const char *name)
{
        Prop *p = o ? g_hash_table_lookup(o->props, name) : NULL;
        return p && p->type == 'u' ? p->u : 0;
}

static bool get_b(Object *o, const char *name)
{
        Prop *p = o ? g_hash_table_lookup(o->props, name) : NULL;
        return p && p->type == 'b' ? p->b : false;
}

static char **get_strv(Object *o, const char *name)
{
        static char *empty[] = {NULL};
        Prop *p = o ? g_hash_table_lookup(o->props, name) : NULL;
        return p && p->type == 'a' && p->strv ? p->strv : empty;
}

/* Reads an a{sv} of properties into o->props. */
static int read_props(sd_bus_message *m, Object *o)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *contents;
                Prop *p = g_new0(Prop, 1);

                r = sd_bus_message_read(m, "s", &name);
                if (r >= 0)
                        r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r < 0) {
                        prop_free(p);
                        return r;
                }
                if (streq0(contents, "s") || streq0(contents, "o")) {
                        const char *v;
                        r = sd_bus_message_read(m, "v", contents, &v);
                        p->type = 's';
                        p->s = g_strdup(r >= 0 ? v : "");
                } else if (streq0(contents, "q")) {
                        uint16_t v = 0;
                        r = sd_bus_message_read(m, "v", "q", &v);
                        p->type = 'u';
                        p->u = v;
                } else if (streq0(contents, "u")) {
                        uint32_t v = 0;
                        r = sd_bus_message_read(m, "v", "u", &v);
                        p->type = 'u';
                        p->u = v;
                } else if (streq0(contents, "t")) {
                        uint64_t v = 0;
                        r = sd_bus_message_read(m, "v", "t", &v);
                        p->type = 'u';
                        p->u = v;
                } else if (streq0(contents, "b")) {
                        int v = 0;
                        r = sd_bus_message_read(m, "v", "b", &v);
                        p->type = 'b';
                        p->b = v;
                } else if (streq0(contents, "as") || streq0(contents, "ao")) {
                        r = sd_bus_message_enter_container(m, 'v', contents);
                        if (r >= 0)
                                r = sd_bus_message_read_strv(m, &p->strv);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        p->type = 'a';
                } else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0) {
                        prop_free(p);
                        return r;
                }
                if (p->type)
                        g_hash_table_replace(o->props, g_strdup(name), p);
                else
                        prop_free(p);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* ---- errors ---------------------------------------------------------------------------------------- */

static int exit_code_for(const sd_bus_error *e, int r)
{
        if (e && e->name) {
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                           SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_NO_SERVER))
                        return EXIT_UNREACHABLE;
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_ACCESS_DENIED,
                                           SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                           "org.freedesktop.PolicyKit1.Error.NotAuthorized"))
                        return EXIT_DENIED;
                return EXIT_FAILED;
        }
        if (r == -ECONNREFUSED || r == -ENOENT || r == -ENOTCONN || r == -ECONNRESET)
                return EXIT_UNREACHABLE;
        if (r == -EACCES || r == -EPERM)
                return EXIT_DENIED;
        return EXIT_FAILED;
}

static int fail(const char *what, const sd_bus_error *e, int r)
{
        int code = exit_code_for(e, r);
        const char *msg = e && e->message ? e->message : g_strerror(-r);

        if (code == EXIT_UNREACHABLE)
                fprintf(stderr, "%s: netclientd is not reachable: %s\n", what, msg);
        else if (code == EXIT_DENIED && e &&
                 sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                fprintf(stderr, "%s: not authorised: %s\n", what, msg);
        else if (code == EXIT_DENIED)
                fprintf(stderr, "%s: not authorised: %s\n", what, msg);
        else
                fprintf(stderr, "%s: %s\n", what, msg);
        return code;
}

/* ---- polkit agent: like systemctl, ask for a password on this terminal when polkit wants one ------- */

static pid_t agent_pid = 0;

static void agent_open(void)
{
        int pipefd[2];
        char notify[32];

        if (agent_pid > 0 || !arg_ask_password || !isatty(STDIN_FILENO) || geteuid() == 0)
                return;
        if (access("/usr/bin/pkttyagent", X_OK) < 0 || pipe2(pipefd, O_CLOEXEC) < 0)
                return;
        agent_pid = fork();
        if (agent_pid < 0) {
                agent_pid = 0;
                close(pipefd[0]);
                close(pipefd[1]);
                return;
        }
        if (agent_pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                close(pipefd[0]);
                /* The notify fd must survive exec. */
                int fd = dup(pipefd[1]);
                snprintf(notify, sizeof(notify), "%d", fd);
                execl("/usr/bin/pkttyagent", "pkttyagent", "--notify-fd", notify, "--fallback",
                      (char *)NULL);
                _exit(EXIT_FAILURE);
        }
        close(pipefd[1]);
        /* Wait until the agent is registered (it closes the fd), so our call finds it. */
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        (void)poll(&p, 1, 5000);
        close(pipefd[0]);
}

static void agent_close(void)
{
        if (agent_pid <= 0)
                return;
        kill(agent_pid, SIGTERM);
        (void)waitpid(agent_pid, NULL, 0);
        agent_pid = 0;
}

/* ---- talking to the daemon -------------------------------------------------------------------------- */

static int open_bus(sd_bus **ret)
{
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "Cannot connect to the system bus: %s\n", g_strerror(-r));
                return -EXIT_UNREACHABLE;
        }
        (void)sd_bus_set_allow_interactive_authorization(bus, arg_ask_password);
        *ret = bus;
        return 0;
}

/* The manager object and every network and peer (from the ObjectManager). */
static int load_objects(sd_bus *bus, Object **ret_manager, GPtrArray **ret_objects)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) objs = g_ptr_array_new_with_free_func(object_free);
        Object *mgr = object_new(OBJECT_PATH);
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "GetAll", &e,
                               &reply, "s", IFACE);
        if (r < 0) {
                object_free(mgr);
                return -fail("Failed to read netclientd's state", &e, r);
        }
        r = read_props(reply, mgr);
        reply = sd_bus_message_unref(reply);
        if (r >= 0)
                r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.ObjectManager",
                                       "GetManagedObjects", &e, &reply, NULL);
        if (r < 0) {
                object_free(mgr);
                return -fail("Failed to list networks", &e, r);
        }
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                Object *o;

                r = sd_bus_message_read(reply, "o", &path);
                if (r < 0)
                        break;
                o = object_new(path);
                g_ptr_array_add(objs, o);
                r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}");
                while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *iface;
                        r = sd_bus_message_read(reply, "s", &iface);
                        if (r < 0)
                                break;
                        if (streq0(iface, NETWORK_IFACE) || streq0(iface, PEER_IFACE)) {
                                g_free(o->iface);
                                o->iface = g_strdup(iface);
                                r = read_props(reply, o);
                        } else
                                r = sd_bus_message_skip(reply, "a{sv}");
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                object_free(mgr);
                fprintf(stderr, "Failed to parse netclientd's answer: %s\n", g_strerror(-r));
                return -EXIT_FAILED;
        }
        *ret_manager = mgr;
        *ret_objects = TAKE_PTR(objs);
        return 0;
}

static Object *find_object(GPtrArray *objs, const char *path)
{
        for (guint i = 0; i < objs->len; i++)
                if (streq0(((Object *)objs->pdata[i])->path, path))
                        return objs->pdata[i];
        return NULL;
}

static Object *find_network(GPtrArray *objs, const char *name)
{
        for (guint i = 0; i < objs->len; i++) {
                Object *o = objs->pdata[i];
                if (streq0(o->iface, NETWORK_IFACE) && streq0(get_s(o, "Name"), name))
                        return o;
        }
        return NULL;
}

static int cmp_objects_by_name(gconstpointer a, gconstpointer b)
{
        Object *x = *(Object **)a, *y = *(Object **)b;
        return g_strcmp0(get_s(x, "Name"), get_s(y, "Name"));
}

/* Networks sorted by name. */
static GPtrArray *networks_of(GPtrArray *objs)
{
        GPtrArray *a = g_ptr_array_new();
        for (guint i = 0; i < objs->len; i++)
                if (streq0(((Object *)objs->pdata[i])->iface, NETWORK_IFACE))
                        g_ptr_array_add(a, objs->pdata[i]);
        g_ptr_array_sort(a, cmp_objects_by_name);
        return a;
}

static GPtrArray *peers_of(GPtrArray *objs, Object *net)
{
        GPtrArray *a = g_ptr_array_new();
        for (char **p = get_strv(net, "Peers"); *p; p++) {
                Object *o = find_object(objs, *p);
                if (o)
                        g_ptr_array_add(a, o);
        }
        g_ptr_array_sort(a, cmp_objects_by_name);
        return a;
}

static void print_json(JsonBuilder *b)
{
        g_autoptr(JsonGenerator) g = json_generator_new();
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        json_generator_set_root(g, root);
        json_generator_set_pretty(g, true);
        g_autofree char *s = json_generator_to_data(g, NULL);
        printf("%s\n", s);
}

static void json_strv(JsonBuilder *b, const char *member, char **v)
{
        json_builder_set_member_name(b, member);
        json_builder_begin_array(b);
        for (; v && *v; v++)
                json_builder_add_string_value(b, *v);
        json_builder_end_array(b);
}

static char *format_bytes(uint64_t n)
{
        return g_format_size_full(n, G_FORMAT_SIZE_IEC_UNITS);
}

static char *format_handshake(uint64_t usec)
{
        if (usec == 0)
                return g_strdup("never");
        gint64 now = g_get_real_time();
        gint64 ago = (now - (gint64)usec) / G_USEC_PER_SEC;
        if (ago < 0)
                ago = 0;
        if (ago < 120)
                return g_strdup_printf("%" G_GINT64_FORMAT "s ago", ago);
        if (ago < 7200)
                return g_strdup_printf("%" G_GINT64_FORMAT "min ago", ago / 60);
        return g_strdup_printf("%" G_GINT64_FORMAT "h ago", ago / 3600);
}

static const char *dns_state_text(const char *state)
{
        if (streq0(state, "resolved"))
                return "registered with systemd-resolved";
        if (streq0(state, "networkd"))
                return "registered with systemd-resolved through systemd-networkd";
        if (streq0(state, "pending"))
                return "not registered yet (systemd-resolved is not running or does not know the link)";
        if (streq0(state, "failed"))
                return "DNS failed (see netclientd's log)";
        if (streq0(state, "off"))
                return "DNS off";
        return state;
}

/* ---- commands --------------------------------------------------------------------------------------- */

static void network_to_json(JsonBuilder *b, Object *n)
{
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, get_s(n, "Name"));
        json_builder_set_member_name(b, "interface");
        json_builder_add_string_value(b, get_s(n, "Interface"));
        json_builder_set_member_name(b, "node_id");
        json_builder_add_string_value(b, get_s(n, "NodeId"));
        json_strv(b, "addresses", get_strv(n, "Addresses"));
        json_builder_set_member_name(b, "listen_port");
        json_builder_add_int_value(b, (gint64)get_u(n, "ListenPort"));
        json_builder_set_member_name(b, "mtu");
        json_builder_add_int_value(b, (gint64)get_u(n, "MTU"));
        json_builder_set_member_name(b, "dns_domain");
        json_builder_add_string_value(b, get_s(n, "DNSDomain"));
        json_builder_set_member_name(b, "dns_zone");
        json_builder_add_string_value(b, get_s(n, "DNSZone"));
        json_builder_set_member_name(b, "dns_state");
        json_builder_add_string_value(b, get_s(n, "DNSState"));
        json_builder_set_member_name(b, "serial");
        json_builder_add_int_value(b, (gint64)get_u(n, "Serial"));
        json_builder_set_member_name(b, "connected");
        json_builder_add_boolean_value(b, get_b(n, "Connected"));
        json_builder_set_member_name(b, "peers");
        json_builder_add_int_value(b, g_strv_length(get_strv(n, "Peers")));
        json_strv(b, "roles", get_strv(n, "Roles"));
        json_strv(b, "egress_ranges", get_strv(n, "EgressRanges"));
        json_builder_set_member_name(b, "egress_nat");
        json_builder_add_boolean_value(b, get_b(n, "EgressNAT"));
        json_builder_set_member_name(b, "relayed_by");
        json_builder_add_string_value(b, get_s(n, "RelayedBy"));
        json_builder_set_member_name(b, "internet_gateway_via");
        json_builder_add_string_value(b, get_s(n, "InternetGatewayVia"));
        json_builder_end_object(b);
}

static int cmd_status(sd_bus *bus, bool list_only)
{
        Object *mgr_raw = NULL;
        g_autoptr(GPtrArray) objs = NULL;
        int r = load_objects(bus, &mgr_raw, &objs);
        if (r < 0)
                return -r;
        g_autoptr(GPtrArray) nets = networks_of(objs);
        Object *mgr = mgr_raw;

        if (arg_json) {
                g_autoptr(JsonBuilder) b = json_builder_new();
                if (list_only) {
                        json_builder_begin_array(b);
                        for (guint i = 0; i < nets->len; i++)
                                network_to_json(b, nets->pdata[i]);
                        json_builder_end_array(b);
                } else {
                        json_builder_begin_object(b);
                        const char *keys[][2] = {{"state", "State"},
                                                 {"server", "Server"},
                                                 {"host_id", "HostId"},
                                                 {"public_key", "PublicKey"},
                                                 {"public_address", "PublicAddress"},
                                                 {"version", "Version"}};
                        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                                json_builder_set_member_name(b, keys[i][0]);
                                json_builder_add_string_value(b, get_s(mgr, keys[i][1]));
                        }
                        json_builder_set_member_name(b, "networks");
                        json_builder_begin_array(b);
                        for (guint i = 0; i < nets->len; i++)
                                network_to_json(b, nets->pdata[i]);
                        json_builder_end_array(b);
                        json_builder_end_object(b);
                }
                print_json(b);
                object_free(mgr);
                return EXIT_OK;
        }

        if (!list_only) {
                printf("      State: %s\n", get_s(mgr, "State"));
                printf("     Server: %s\n", *get_s(mgr, "Server") ? get_s(mgr, "Server") : "(none)");
                printf("    Host ID: %s\n", *get_s(mgr, "HostId") ? get_s(mgr, "HostId") : "(none)");
                printf(" Public key: %s\n", *get_s(mgr, "PublicKey") ? get_s(mgr, "PublicKey") : "(none)");
                printf("  Public IP: %s\n",
                       *get_s(mgr, "PublicAddress") ? get_s(mgr, "PublicAddress") : "(unknown)");
                printf("    Version: %s\n", get_s(mgr, "Version"));
                printf("   Networks: %u\n", nets->len);
                if (nets->len > 0)
                        printf("\n");
        }
        if (nets->len == 0) {
                if (list_only)
                        printf("No networks joined.\n");
                object_free(mgr);
                return EXIT_OK;
        }
        printf("%-20s %-15s %-32s %5s %-9s %s\n", "NETWORK", "INTERFACE", "ADDRESSES", "PEERS", "CONNECTED",
               "ROLES");
        for (guint i = 0; i < nets->len; i++) {
                Object *n = nets->pdata[i];
                g_autofree char *addrs = g_strjoinv(" ", get_strv(n, "Addresses"));
                g_autofree char *roles = g_strjoinv(",", get_strv(n, "Roles"));
                printf("%-20s %-15s %-32s %5u %-9s %s\n", get_s(n, "Name"), get_s(n, "Interface"), addrs,
                       g_strv_length(get_strv(n, "Peers")), get_b(n, "Connected") ? "yes" : "no",
                       *roles ? roles : "-");
        }
        /* What the roles mean in detail, only where there is something to say. */
        for (guint i = 0; i < nets->len && !list_only; i++) {
                Object *n = nets->pdata[i];
                g_autofree char *egress = g_strjoinv(" ", get_strv(n, "EgressRanges"));
                if (*egress)
                        printf("%s: routes %s for the mesh%s\n", get_s(n, "Name"), egress,
                               get_b(n, "EgressNAT") ? " (NAT)" : "");
                if (*get_s(n, "RelayedBy"))
                        printf("%s: relayed by node %s\n", get_s(n, "Name"), get_s(n, "RelayedBy"));
                if (*get_s(n, "InternetGatewayVia"))
                        printf("%s: internet traffic through node %s\n", get_s(n, "Name"),
                               get_s(n, "InternetGatewayVia"));
                if (*get_s(n, "DNSZone"))
                        printf("%s: names *.%s answered on the mesh address, %s\n", get_s(n, "Name"),
                               get_s(n, "DNSZone"), dns_state_text(get_s(n, "DNSState")));
        }
        object_free(mgr);
        return EXIT_OK;
}

static int cmd_peers(sd_bus *bus, const char *network)
{
        Object *mgr = NULL;
        g_autoptr(GPtrArray) objs = NULL;
        int r = load_objects(bus, &mgr, &objs);
        if (r < 0)
                return -r;
        object_free(mgr);
        g_autoptr(GPtrArray) nets = networks_of(objs);

        if (network && !find_network(objs, network)) {
                fprintf(stderr, "Network \"%s\" is not joined.\n", network);
                return EXIT_FAILED;
        }
        g_autoptr(JsonBuilder) b = json_builder_new();
        if (arg_json)
                json_builder_begin_array(b);
        else
                printf("%-14s %-20s %-20s %-24s %-12s %10s %10s\n", "NETWORK", "PEER", "ADDRESSES",
                       "ENDPOINT", "HANDSHAKE", "RX", "TX");
        for (guint i = 0; i < nets->len; i++) {
                Object *n = nets->pdata[i];
                if (network && !streq0(get_s(n, "Name"), network))
                        continue;
                g_autoptr(GPtrArray) peers = peers_of(objs, n);
                for (guint j = 0; j < peers->len; j++) {
                        Object *p = peers->pdata[j];
                        if (arg_json) {
                                json_builder_begin_object(b);
                                json_builder_set_member_name(b, "network");
                                json_builder_add_string_value(b, get_s(n, "Name"));
                                const char *keys[][2] = {{"name", "Name"},
                                                         {"host_id", "HostId"},
                                                         {"public_key", "PublicKey"},
                                                         {"endpoint", "Endpoint"}};
                                for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
                                        json_builder_set_member_name(b, keys[k][0]);
                                        json_builder_add_string_value(b, get_s(p, keys[k][1]));
                                }
                                json_strv(b, "addresses", get_strv(p, "Addresses"));
                                json_strv(b, "allowed_ips", get_strv(p, "AllowedIPs"));
                                json_builder_set_member_name(b, "latest_handshake_usec");
                                json_builder_add_int_value(b, (gint64)get_u(p, "LatestHandshake"));
                                json_builder_set_member_name(b, "rx_bytes");
                                json_builder_add_int_value(b, (gint64)get_u(p, "RxBytes"));
                                json_builder_set_member_name(b, "tx_bytes");
                                json_builder_add_int_value(b, (gint64)get_u(p, "TxBytes"));
                                json_builder_set_member_name(b, "external");
                                json_builder_add_boolean_value(b, get_b(p, "External"));
                                json_builder_end_object(b);
                        } else {
                                g_autofree char *addrs = g_strjoinv(" ", get_strv(p, "Addresses"));
                                g_autofree char *hs = format_handshake(get_u(p, "LatestHandshake"));
                                g_autofree char *rx = format_bytes(get_u(p, "RxBytes"));
                                g_autofree char *tx = format_bytes(get_u(p, "TxBytes"));
                                g_autofree char *name = g_strdup_printf(
                                        "%s%s", get_s(p, "Name"), get_b(p, "External") ? " (ext)" : "");
                                printf("%-14s %-20s %-20s %-24s %-12s %10s %10s\n", get_s(n, "Name"), name,
                                       addrs, *get_s(p, "Endpoint") ? get_s(p, "Endpoint") : "-", hs, rx,
                                       tx);
                        }
                }
        }
        if (arg_json) {
                json_builder_end_array(b);
                print_json(b);
        }
        return EXIT_OK;
}

static int cmd_internet_gateway(sd_bus *bus, const char *network, const char *gateway)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *g = streq0(gateway, "off") ? "" : gateway;
        int r;

        agent_open();
        r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, IFACE, "SetInternetGateway", &e, &reply, "ss",
                               network, g);
        agent_close();
        if (r < 0)
                return fail("Setting the internet gateway failed", &e, r);
        if (!arg_json) {
                if (*g)
                        printf("Network %s: internet traffic now goes through node %s.\n", network, g);
                else
                        printf("Network %s: internet traffic no longer goes through a gateway.\n", network);
        }
        return EXIT_OK;
}

static int simple_call(sd_bus *bus, const char *what, const char *method, const char *network)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, BUS_NAME, OBJECT_PATH, IFACE, method);
        if (r >= 0 && network)
                r = sd_bus_message_append(call, "s", network);
        if (r < 0)
                return fail(what, NULL, r);
        agent_open();
        r = sd_bus_call(bus, call, CALL_TIMEOUT_USEC, &e, &reply);
        agent_close();
        if (r < 0)
                return fail(what, &e, r);
        return EXIT_OK;
}

/* ---- join, with progress --------------------------------------------------------------------------- */

typedef struct JoinState {
        bool done;
        int exit_code;
        char **paths;
} JoinState;

static const char *progress_text(const char *step)
{
        if (streq0(step, "contacting-server"))
                return "Contacting the server...";
        if (streq0(step, "registered"))
                return "The server accepted the token.";
        if (streq0(step, "configuring"))
                return "Configuring WireGuard links...";
        if (streq0(step, "connecting"))
                return "Connecting to the broker...";
        if (streq0(step, "done"))
                return NULL;
        return step;
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        const char *step;
        if (sd_bus_message_read(m, "s", &step) < 0)
                return 0;
        const char *t = progress_text(step);
        if (t && !arg_json)
                fprintf(stderr, "%s\n", t);
        return 0;
}

static int on_join_reply(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        JoinState *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        s->done = true;
        if (e) {
                s->exit_code = fail("Join failed", e, -sd_bus_message_get_errno(m));
                return 0;
        }
        if (sd_bus_message_read_strv(m, &s->paths) < 0) {
                fprintf(stderr, "Join: unexpected answer from netclientd\n");
                s->exit_code = EXIT_FAILED;
                return 0;
        }
        s->exit_code = EXIT_OK;
        return 0;
}

static int cmd_join(sd_bus *bus)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *slot = NULL;
        JoinState s = {};
        int r;

        r = sd_bus_match_signal(bus, &match, BUS_NAME, OBJECT_PATH, IFACE, "JoinProgress", on_progress,
                                NULL);
        if (r < 0)
                return fail("Join", NULL, r);
        r = sd_bus_message_new_method_call(bus, &call, BUS_NAME, OBJECT_PATH, IFACE, "Join");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", arg_token);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && arg_name)
                r = sd_bus_message_append(call, "{sv}", "name", "s", arg_name);
        if (r >= 0 && arg_port)
                r = sd_bus_message_append(call, "{sv}", "listen-port", "q", (uint16_t)arg_port);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0)
                return fail("Join", NULL, r);

        agent_open();
        gint64 start = g_get_monotonic_time();
        r = sd_bus_call_async(bus, &slot, call, on_join_reply, &s, JOIN_TIMEOUT_USEC);
        if (r < 0) {
                agent_close();
                return fail("Join", NULL, r);
        }
        while (!s.done) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        agent_close();
                        return fail("Join", NULL, r);
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        agent_close();
                        return fail("Join", NULL, r);
                }
        }
        agent_close();
        if (s.exit_code != EXIT_OK)
                return s.exit_code;

        /* Say what we joined, from the objects the reply named. */
        Object *mgr = NULL;
        g_autoptr(GPtrArray) objs = NULL;
        double secs = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
        if (load_objects(bus, &mgr, &objs) < 0) {
                g_strfreev(s.paths);
                return EXIT_OK; /* the join itself worked */
        }
        if (arg_json) {
                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_array(b);
                for (char **p = s.paths; p && *p; p++) {
                        Object *n = find_object(objs, *p);
                        if (n)
                                network_to_json(b, n);
                }
                json_builder_end_array(b);
                print_json(b);
        } else {
                for (char **p = s.paths; p && *p; p++) {
                        Object *n = find_object(objs, *p);
                        if (!n)
                                continue;
                        g_autofree char *addrs = g_strjoinv(", ", get_strv(n, "Addresses"));
                        printf("Joined network %s on %s with %s (%u peer%s).\n", get_s(n, "Name"),
                               get_s(n, "Interface"), addrs, g_strv_length(get_strv(n, "Peers")),
                               g_strv_length(get_strv(n, "Peers")) == 1 ? "" : "s");
                }
                if (!s.paths || !*s.paths)
                        printf("The server added no new network.\n");
                fprintf(stderr, "Done in %.1f s. State: %s\n", secs, get_s(mgr, "State"));
        }
        object_free(mgr);
        g_strfreev(s.paths);
        return EXIT_OK;
}

/* ---- main ------------------------------------------------------------------------------------------- */

static void help(void)
{
        printf("%s [OPTIONS...] COMMAND\n\n"
               "Join WireGuard mesh networks through netclientd.\n\n"
               "Commands:\n"
               "  join -t TOKEN [--name NAME] [--port PORT]   Join the networks of an enrollment token\n"
               "  leave NETWORK                               Leave a network (its link is removed)\n"
               "  list                                        List joined networks\n"
               "  status                                      Show the host's state and networks\n"
               "  peers [NETWORK]                             Show peers with handshakes and traffic\n"
               "  pull                                        Fetch the full state from the server now\n"
               "  connect NETWORK                             Bring a network's link up with its peers\n"
               "  disconnect NETWORK                          Take a network's link down (stays joined;\n"
               "                                              the server has its peers drop this host)\n"
               "  internet-gateway NETWORK NODE-ID|off        Send internet traffic through a gateway "
               "node\n\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "  -j --json              JSON output (list, status, peers, join)\n"
               "  -t --token=TOKEN       The enrollment token (join)\n"
               "     --name=NAME         The host name to register (join)\n"
               "     --port=PORT         The WireGuard port to register (join)\n"
               "     --no-ask-password   Never ask for a password (polkit)\n\n"
               "Exit status: 0 success, 1 failed or refused by the daemon, 2 usage error,\n"
               "3 netclientd not reachable, 4 not authorised.\n",
               program_invocation_short_name);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry '%s --help'.\n", program_invocation_short_name);
        return EXIT_USAGE;
}

int main(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100, ARG_NO_ASK, ARG_NAME, ARG_PORT };
        /* clang-format off */
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"json", no_argument, NULL, 'j'},
                {"no-ask-password", no_argument, NULL, ARG_NO_ASK},
                {"token", required_argument, NULL, 't'},
                {"name", required_argument, NULL, ARG_NAME},
                {"port", required_argument, NULL, ARG_PORT},
                {},
        };
        /* clang-format on */
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *cmd;
        int c, r;

        /* Options may come before or after the command ("netclient peers --json"). */
        while ((c = getopt_long(argc, argv, "hjt:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case ARG_VERSION:
                        printf("netclient %s\n", PACKAGE_VERSION);
                        return EXIT_OK;
                case 'j':
                        arg_json = true;
                        break;
                case ARG_NO_ASK:
                        arg_ask_password = false;
                        break;
                case 't':
                        arg_token = optarg;
                        break;
                case ARG_NAME:
                        arg_name = optarg;
                        break;
                case ARG_PORT: {
                        guint64 p;
                        if (!g_ascii_string_to_unsigned(optarg, 10, 1, 65535, &p, NULL))
                                return usage_error("Invalid port \"%s\": expected 1-65535.", optarg);
                        arg_port = (unsigned)p;
                        break;
                }
                case '?':
                        fprintf(stderr, "Try '%s --help'.\n", program_invocation_short_name);
                        return EXIT_USAGE;
                default:
                        g_assert_not_reached();
                }

        if (optind >= argc)
                return usage_error("%s", "Missing command.");
        cmd = argv[optind++];
        int nargs = argc - optind;
        const char *arg = nargs > 0 ? argv[optind] : NULL;

        static const struct {
                const char *name;
                int min, max;
        } commands[] = {
                {"join", 0, 0},    {"leave", 1, 1},      {"list", 0, 0},
                {"status", 0, 0},  {"peers", 0, 1},      {"pull", 0, 0},
                {"connect", 1, 1}, {"disconnect", 1, 1}, {"internet-gateway", 2, 2},
        };
        bool known = false;
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
                if (streq0(cmd, commands[i].name)) {
                        known = true;
                        if (nargs < commands[i].min)
                                return usage_error(commands[i].min > 1
                                                           ? "'%s' needs a network name and a node id "
                                                             "(or \"off\")."
                                                           : "'%s' needs a network name.",
                                                   cmd);
                        if (nargs > commands[i].max)
                                return usage_error("Too many arguments for '%s'.", cmd);
                }
        if (!known)
                return usage_error("Unknown command \"%s\".", cmd);
        if (streq0(cmd, "join") && (!arg_token || !*arg_token))
                return usage_error("%s", "'join' needs an enrollment token: netclient join -t TOKEN");

        r = open_bus(&bus);
        if (r < 0)
                return -r;

        if (streq0(cmd, "join"))
                return cmd_join(bus);
        if (streq0(cmd, "leave")) {
                r = simple_call(bus, "Leave failed", "Leave", arg);
                if (r == EXIT_OK && !arg_json)
                        printf("Left network %s.\n", arg);
                return r;
        }
        if (streq0(cmd, "list"))
                return cmd_status(bus, true);
        if (streq0(cmd, "status"))
                return cmd_status(bus, false);
        if (streq0(cmd, "peers"))
                return cmd_peers(bus, arg);
        if (streq0(cmd, "pull")) {
                r = simple_call(bus, "Pull failed", "Pull", NULL);
                if (r == EXIT_OK && !arg_json)
                        printf("Pulled the state from the server.\n");
                return r;
        }
        if (streq0(cmd, "internet-gateway"))
                return cmd_internet_gateway(bus, arg, argv[optind + 1]);
        if (streq0(cmd, "connect")) {
                r = simple_call(bus, "Connect failed", "Connect", arg);
                if (r == EXIT_OK && !arg_json)
                        printf("Connected network %s.\n", arg);
                return r;
        }
        if (streq0(cmd, "disconnect")) {
                r = simple_call(bus, "Disconnect failed", "Disconnect", arg);
                if (r == EXIT_OK && !arg_json)
                        printf("Disconnected network %s.\n", arg);
                return r;
        }
        g_assert_not_reached();
}
