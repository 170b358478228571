/* Proves the external client configuration text of docs/protocol.md §4.3 line by line: both
 * address families, the DNS and keepalive lines only when there is something to say. */
#include "extclient-config.h"
#include "macro.h"

static void test_full(void)
{
        const char *addresses[] = {"10.99.0.254/32", "fd00:99::fffe/128", NULL};
        const char *allowed[] = {"10.99.0.0/24", "fd00:99::/64", "192.168.50.0/24", NULL};
        ExtClientConfig c = {
                .private_key = "cHJpdmF0ZS1rZXktb2YtdGhlLWNsaWVudC0wMDAwMDA=",
                .addresses = addresses,
                .dns = "10.99.0.1",
                .mtu = 1420,
                .peer_public_key = "cHVibGljLWtleS1vZi10aGUtZ2F0ZXdheS0wMDAwMDA=",
                .endpoint = "198.18.0.1:51821",
                .allowed_ips = allowed,
                .keepalive = 20,
        };
        g_autofree char *text = extclient_config_text(&c);
        g_assert_cmpstr(text, ==,
                        "[Interface]\n"
                        "PrivateKey = cHJpdmF0ZS1rZXktb2YtdGhlLWNsaWVudC0wMDAwMDA=\n"
                        "Address = 10.99.0.254/32, fd00:99::fffe/128\n"
                        "DNS = 10.99.0.1\n"
                        "MTU = 1420\n"
                        "\n"
                        "[Peer]\n"
                        "PublicKey = cHVibGljLWtleS1vZi10aGUtZ2F0ZXdheS0wMDAwMDA=\n"
                        "Endpoint = 198.18.0.1:51821\n"
                        "AllowedIPs = 10.99.0.0/24, fd00:99::/64, 192.168.50.0/24\n"
                        "PersistentKeepalive = 20\n");
}

static void test_without_dns_and_keepalive(void)
{
        const char *addresses[] = {"10.99.0.254/32", NULL};
        const char *allowed[] = {"10.99.0.0/24", NULL};
        ExtClientConfig c = {
                .private_key = "K",
                .addresses = addresses,
                .dns = "",
                .mtu = 1280,
                .peer_public_key = "P",
                .endpoint = "[fd00::1]:51821",
                .allowed_ips = allowed,
        };
        g_autofree char *text = extclient_config_text(&c);
        g_assert_cmpstr(text, ==,
                        "[Interface]\nPrivateKey = K\nAddress = 10.99.0.254/32\nMTU = "
                        "1280\n\n[Peer]\nPublicKey = P\n"
                        "Endpoint = [fd00::1]:51821\nAllowedIPs = 10.99.0.0/24\n");
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/extclient-config/full", test_full);
        g_test_add_func("/extclient-config/without-dns-and-keepalive", test_without_dns_and_keepalive);
        return g_test_run();
}
