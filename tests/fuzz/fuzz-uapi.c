/* libFuzzer target for the WireGuard UAPI reply parser (what a userspace WireGuard implementation
 * answers on its socket): no crash, no leak, bounded memory, and the same verdict whether the
 * reply arrives in one piece or in chunks. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wg-uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(WgUapiReplyKind kind, const uint8_t *data, size_t size, size_t chunk)
{
        /* Small limits so the fuzzer reaches them quickly. */
        WgUapiLimits limits = {
                .max_line = 128, .max_bytes = 1 << 16, .max_peers = 64, .max_allowed_ips = 256};
        g_autoptr(WgDevice) whole = NULL;
        g_autoptr(WgDevice) pieces = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(WgUapiParser) p = wg_uapi_parser_new(kind, "fuzz0", &limits);
        int r1, r2 = 0;

        r1 = wg_uapi_parse(kind, "fuzz0", data, size, &limits, &whole, &error);
        g_assert(r1 <= 0);
        g_assert((r1 == 0) == (error == NULL));

        for (size_t off = 0; off < size && r2 >= 0; off += chunk)
                r2 = wg_uapi_parser_feed(p, data + off, MIN(chunk, size - off), NULL);
        r2 = wg_uapi_parser_finish(p, &pieces, NULL);
        g_assert_cmpint(r1, ==, r2);
        if (r1 == 0 && kind == WG_UAPI_REPLY_GET) {
                g_assert_cmpuint(whole->peers->len, ==, pieces->peers->len);
                g_assert_cmpuint(wg_device_count_allowed_ips(whole), ==,
                                 wg_device_count_allowed_ips(pieces));
                g_assert(whole->peers->len <= limits.max_peers);
                /* Whatever was read can be written back. */
                char *set = wg_uapi_format_set(whole);
                g_assert(g_str_has_prefix(set, "set=1\n") && g_str_has_suffix(set, "\n\n"));
                g_free(set);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t chunk;

        if (size < 1)
                return 0;
        chunk = (size_t)(data[0] % 17) + 1;
        check(WG_UAPI_REPLY_GET, data + 1, size - 1, chunk);
        check(WG_UAPI_REPLY_SET, data + 1, size - 1, chunk);
        return 0;
}
