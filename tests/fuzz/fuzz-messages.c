/* libFuzzer target for the sealed MQTT payloads of docs/protocol.md §3, both ways: what a host
 * opens from its message topic (netclientd's mq_client_open_message(): nm_open() and
 * nm_message_parse()) and what netmakerd opens from a report topic (nm_open() and
 * nm_report_parse(), as mq.c does). No crash; a payload that does not authenticate is refused
 * whatever follows; and what parses is written again (nm_message_to_json(), nm_report_to_json())
 * into JSON that parses to the same.
 *
 * The first byte picks the direction (bit 0: report) and the form of the rest (bit 1: the payload
 * as it arrives, which opens only when it was sealed with the keys below; else the plaintext,
 * sealed here with the right keys so the fuzzer reaches the JSON inside). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "macro.h"
#include "mq-client.h"
#include "proto.h"
#include "seal.h"

static NmKey server_pub, server_sec, host_pub, host_sec;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* Fixed keys: an input that opens today opens when it is replayed. */
        static const uint8_t seed_s[32] = {1}, seed_h[32] = {2};
        if (nm_crypto_init() < 0)
                abort();
        memcpy(server_sec.b, seed_s, 32);
        memcpy(host_sec.b, seed_h, 32);
        nm_key_public_from_private(&server_sec, &server_pub);
        nm_key_public_from_private(&host_sec, &host_pub);
        return 0;
}

static void check_message(const uint8_t *payload, size_t len)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(NmMessage) m = mq_client_open_message(&server_pub, &host_sec, payload, len, &e);
        if (!m) {
                g_assert(e);
                return;
        }
        /* Written and read again, a message is the same message. */
        g_autofree char *json = nm_message_to_json(m);
        g_autoptr(NmMessage) again = nm_message_parse(json, -1, &e);
        if (!again)
                g_error("a parsed message does not parse once written: %s\n%s", e->message, json);
        g_autofree char *json2 = nm_message_to_json(again);
        g_assert_cmpstr(json, ==, json2);
}

static bool reports_equal(const NmReport *a, const NmReport *b)
{
        if (a->type != b->type || !streq0(a->version, b->version) || !streq0(a->public_ip, b->public_ip) ||
            g_hash_table_size(a->listen_ports) != g_hash_table_size(b->listen_ports))
                return false;
        guint na = a->endpoints ? g_strv_length(a->endpoints) : 0,
              nb = b->endpoints ? g_strv_length(b->endpoints) : 0;
        if (na != nb)
                return false;
        for (guint i = 0; i < na; i++)
                if (!streq0(a->endpoints[i], b->endpoints[i]))
                        return false;
        GHashTableIter it;
        gpointer k, v, w;
        g_hash_table_iter_init(&it, a->listen_ports);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (!g_hash_table_lookup_extended(b->listen_ports, k, NULL, &w) || v != w)
                        return false;
        return true;
}

static void check_report(const uint8_t *payload, size_t len)
{
        g_autoptr(GError) e = NULL;
        g_autoptr(GBytes) plain = nm_open(payload, len, &host_pub, &server_sec, &e);
        if (!plain) {
                g_assert(e);
                return;
        }
        gsize n;
        const char *text = g_bytes_get_data(plain, &n);
        g_assert(text[n] == 0);
        g_autoptr(NmReport) r = nm_report_parse(text, (gssize)n, &e);
        if (!r)
                return;
        g_autofree char *json = nm_report_to_json(r);
        g_autoptr(NmReport) again = nm_report_parse(json, -1, &e);
        if (!again)
                g_error("a parsed report does not parse once written: %s\n%s", e->message, json);
        g_assert(reports_equal(r, again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        bool report = data[0] & 1, raw = data[0] & 2;
        const uint8_t *rest = data + 1;
        size_t len = size - 1;
        g_autoptr(GBytes) sealed = NULL;

        if (!raw) {
                sealed = report ? nm_seal(rest, len, &server_pub, &host_sec)
                                : nm_seal(rest, len, &host_pub, &server_sec);
                rest = g_bytes_get_data(sealed, &len);
        }
        if (report)
                check_report(rest, len);
        else
                check_message(rest, len);
        return 0;
}
