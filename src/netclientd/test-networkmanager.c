/* Proves the parts of netclientd's NetworkManager client that need no NetworkManager: a network's
 * profile UUID is a well-formed name-based UUID, the same on every call (so a profile is found again
 * after restarts) and different per network; and profiles are made only where NetworkManager would
 * find our plugin's .name file. The rest runs against the real NetworkManager in the VM tier
 * (tests/vm/checks/systemd/60-networkmanager.sh). */
#include <string.h>
#include <unistd.h>

#include "networkmanager.h"
#include "names.h"

static void test_profile_uuid(void)
{
        g_autofree char *a = networkmanager_profile_uuid("office");
        g_autofree char *b = networkmanager_profile_uuid("office");
        g_autofree char *c = networkmanager_profile_uuid("lab");

        g_assert_cmpstr(a, ==, b);
        g_assert_cmpstr(a, !=, c);
        g_assert_true(nm_uuid_valid(a));
        g_assert_cmpuint(strlen(a), ==, 36);
        g_assert_cmpint(a[14], ==, '5');         /* version 5 layout */
        g_assert_nonnull(strchr("89ab", a[19])); /* RFC 4122 variant */
}

static void test_plugin_installed(void)
{
        g_autoptr(GError) e = NULL;
        g_autofree char *dir = g_dir_make_tmp("test-networkmanager-XXXXXX", &e);
        g_autofree char *name = g_build_filename(dir, "nm-netmaker-service.name", NULL);

        g_assert_no_error(e);
        g_setenv("NETCLIENTD_NM_VPN_DIR", dir, TRUE);
        g_assert_false(networkmanager_plugin_installed());
        g_assert_true(g_file_set_contents(name, "[VPN Connection]\n", -1, NULL));
        g_assert_true(networkmanager_plugin_installed());
        g_assert_cmpint(unlink(name), ==, 0);
        g_assert_cmpint(rmdir(dir), ==, 0);
        g_unsetenv("NETCLIENTD_NM_VPN_DIR");
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/netclientd/networkmanager/profile-uuid", test_profile_uuid);
        g_test_add_func("/netclientd/networkmanager/plugin-installed", test_plugin_installed);
        return g_test_run();
}
