/* The forwarding firewall: our nftables table (rendered from the networks' roles, applied through
 * libnftables as one transaction) and the IP forwarding sysctls. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <nftables/libnftables.h>

#include "firewall.h"
#include "macro.h"
#include "nm-error.h"

struct Firewall {
        struct nft_ctx *nft;
        char *applied; /* the script applied last; NULL = unknown (at start) */
        bool removed;  /* the last apply removed the table */
};

bool firewall_network_forwards(const FirewallNetwork *n)
{
        return (n->egress_ranges && n->egress_ranges->len > 0) || n->internet_gateway || n->hairpin;
}

/* "{ 10.0.0.0/24, 10.1.0.0/16 }" of the prefixes of one family, or NULL when there are none. */
static char *prefix_set(const GArray *prefixes, int family)
{
        g_autoptr(GString) s = g_string_new("{ ");
        unsigned n = 0;

        for (guint i = 0; prefixes && i < prefixes->len; i++) {
                NmPrefix p = g_array_index(prefixes, NmPrefix, i);
                if (p.family != family)
                        continue;
                nm_prefix_canonicalize(&p);
                g_autofree char *t = nm_prefix_to_string(&p);
                g_string_append_printf(s, "%s%s", n++ ? ", " : "", t);
        }
        if (n == 0)
                return NULL;
        g_string_append(s, " }");
        return g_string_free(g_steal_pointer(&s), false);
}

static const char *family_keyword(int family)
{
        return family == AF_INET ? "ip" : "ip6";
}

static void render_forward(GString *s, const FirewallNetwork *n)
{
        static const int families[] = {AF_INET, AF_INET6};
        const char *i = n->ifname;

        g_string_append_printf(s, "\t\t# %s\n", i);
        /* Replies to connections made towards the mesh, whatever their destination. */
        g_string_append_printf(s, "\t\tiifname \"%s\" ct state established,related accept\n", i);
        if (n->hairpin)
                g_string_append_printf(s, "\t\tiifname \"%s\" oifname \"%s\" accept\n", i, i);
        for (size_t f = 0; f < G_N_ELEMENTS(families); f++) {
                g_autofree char *egress = prefix_set(n->egress_ranges, families[f]);
                if (egress)
                        g_string_append_printf(s, "\t\tiifname \"%s\" %s daddr %s accept\n", i,
                                               family_keyword(families[f]), egress);
        }
        /* Out to the world, but never into another mesh network, and for external clients only
         * when the admin made them full-tunnel clients. */
        if (n->internet_gateway) {
                for (size_t f = 0; f < G_N_ELEMENTS(families); f++) {
                        g_autofree char *blocked = prefix_set(n->no_internet, families[f]);
                        if (blocked)
                                g_string_append_printf(
                                        s, "\t\tiifname \"%s\" %s saddr %s oifname != \"nm-*\" drop\n", i,
                                        family_keyword(families[f]), blocked);
                }
                g_string_append_printf(s, "\t\tiifname \"%s\" oifname != \"nm-*\" accept\n", i);
        }
        /* A peer may send to any destination; only what the roles allow is forwarded. */
        g_string_append_printf(s, "\t\tiifname \"%s\" drop\n", i);
}

static bool render_nat(GString *s, const FirewallNetwork *n)
{
        static const int families[] = {AF_INET, AF_INET6};
        bool any = false;

        for (size_t f = 0; f < G_N_ELEMENTS(families); f++) {
                g_autofree char *mesh = prefix_set(n->mesh_ranges, families[f]);
                g_autofree char *egress = prefix_set(n->egress_ranges, families[f]);
                const char *k = family_keyword(families[f]);

                if (!mesh)
                        continue;
                if (n->internet_gateway) {
                        g_string_append_printf(s, "\t\toifname != \"nm-*\" %s saddr %s masquerade\n", k,
                                               mesh);
                        any = true;
                } else if (n->egress_nat && egress) {
                        g_string_append_printf(
                                s, "\t\toifname != \"nm-*\" %s saddr %s %s daddr %s masquerade\n", k, mesh,
                                k, egress);
                        any = true;
                }
        }
        return any;
}

char *firewall_render(const FirewallNetwork *nets, size_t n_nets)
{
        g_autoptr(GString) s = g_string_new(NULL);
        g_autoptr(GString) nat = g_string_new(NULL);
        unsigned forwarding = 0;

        for (size_t i = 0; i < n_nets; i++)
                if (firewall_network_forwards(&nets[i]))
                        forwarding++;
        if (forwarding == 0)
                return NULL;

        g_string_append(s, "add table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME "\n"
                           "delete table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME "\n"
                           "table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME " {\n"
                           "\tchain forward {\n"
                           "\t\ttype filter hook forward priority filter; policy accept;\n");
        for (size_t i = 0; i < n_nets; i++)
                if (firewall_network_forwards(&nets[i])) {
                        render_forward(s, &nets[i]);
                        render_nat(nat, &nets[i]);
                }
        g_string_append(s, "\t}\n");
        if (nat->len > 0)
                g_string_append_printf(s,
                                       "\tchain postrouting {\n"
                                       "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                                       "%s"
                                       "\t}\n",
                                       nat->str);
        g_string_append(s, "}\n");
        return g_string_free(g_steal_pointer(&s), false);
}

int firewall_new(Firewall **ret)
{
        Firewall *f = g_new0(Firewall, 1);

        f->nft = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!f->nft) {
                g_free(f);
                return -ENOMEM;
        }
        /* Keep nft's messages for our errors instead of letting it print them. */
        if (nft_ctx_buffer_output(f->nft) < 0 || nft_ctx_buffer_error(f->nft) < 0) {
                firewall_free(f);
                return -ENOMEM;
        }
        *ret = f;
        return 0;
}

Firewall *firewall_free(Firewall *f)
{
        if (!f)
                return NULL;
        nft_ctx_free(f->nft);
        g_free(f->applied);
        g_free(f);
        return NULL;
}

static int run(Firewall *f, const char *script, GError **error)
{
        int r = nft_run_cmd_from_buffer(f->nft, script);
        const char *err = nft_ctx_get_error_buffer(f->nft);

        if (r != 0) {
                g_autofree char *msg = g_strstrip(g_strdup(err && *err ? err : "unknown error"));
                g_set_error(error, NM_ERROR, NM_ERROR_INTERNAL,
                            "nftables refused the rules of table %s %s: %s", FIREWALL_TABLE_FAMILY,
                            FIREWALL_TABLE_NAME, msg);
                return -EIO;
        }
        return 0;
}

int firewall_remove(Firewall *f, GError **error)
{
        int r;

        /* Not there (nft says so with an error): nothing to do, and nothing to report. Reading the
         * buffers empties them. */
        r = nft_run_cmd_from_buffer(f->nft,
                                    "list table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME "\n");
        (void)nft_ctx_get_output_buffer(f->nft);
        (void)nft_ctx_get_error_buffer(f->nft);
        if (r != 0) {
                g_clear_pointer(&f->applied, g_free);
                f->removed = true;
                return 0;
        }
        /* Adding first makes the delete succeed even if the table went meanwhile. */
        r = run(f,
                "add table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME "\n"
                "delete table " FIREWALL_TABLE_FAMILY " " FIREWALL_TABLE_NAME "\n",
                error);
        if (r < 0)
                return r;
        g_clear_pointer(&f->applied, g_free);
        f->removed = true;
        return 1;
}

int firewall_apply(Firewall *f, const FirewallNetwork *nets, size_t n_nets, GError **error)
{
        g_autofree char *script = firewall_render(nets, n_nets);
        int r;

        if (!script)
                return f->removed ? 0 : firewall_remove(f, error);
        if (f->applied && streq0(f->applied, script))
                return 0;
        r = run(f, script, error);
        if (r < 0)
                return r;
        g_free(f->applied);
        f->applied = TAKE_PTR(script);
        f->removed = false;
        return 1;
}

int sysctl_write(const char *path, const char *value)
{
        g_autofree char *p = g_strconcat("/proc/sys/", path, NULL);
        char buf[64];
        size_t len = strlen(value);
        _cleanup_close_ int fd = -1;
        ssize_t n;

        fd = open(p, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n >= 0) {
                buf[n] = 0;
                g_strchomp(buf);
                if (streq0(buf, value))
                        return 0;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        n = write(fd, value, len);
        if (n < 0)
                return -errno;
        return n == (ssize_t)len ? 1 : -EIO;
}

int firewall_enable_forwarding(int family)
{
        int r;

        if (family == AF_INET)
                return sysctl_write("net/ipv4/ip_forward", "1");
        r = sysctl_write("net/ipv6/conf/all/forwarding", "1");
        return r == -ENOENT ? -EAFNOSUPPORT : r;
}
