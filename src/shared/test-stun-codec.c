/* Proves the responder's side of the STUN codec (netmakerd answers Binding requests): RFC 5769's
 * sample request is accepted with its transaction id, and our own padded request too; truncated,
 * extended, misaligned or foreign messages are refused without reading past their end; an answer
 * reads back (with the client's parser) as the address and port it was made for, IPv4 and IPv6,
 * and is never larger than the request netclientd sends, so answering cannot amplify traffic. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "stun-codec.h"

/* RFC 5769 §2.1: SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT. */
static const uint8_t txid5769[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
static const uint8_t req5769[] = {
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
        0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
        0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
        0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
        0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
        0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
        0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

static void test_requests_accepted(void)
{
        uint8_t txid[STUN_TXID_SIZE], ours[STUN_REQUEST_SIZE];

        g_assert_cmpint(stun_parse_binding_request(req5769, sizeof(req5769), txid), ==, 0);
        g_assert_cmpmem(txid, sizeof(txid), txid5769, sizeof(txid5769));
        stun_binding_request(ours, txid5769);
        memset(txid, 0, sizeof(txid));
        g_assert_cmpint(stun_parse_binding_request(ours, sizeof(ours), txid), ==, 0);
        g_assert_cmpmem(txid, sizeof(txid), txid5769, sizeof(txid5769));
        /* A bare header (no attributes) is a request too. */
        uint8_t bare[STUN_HEADER_SIZE];
        memcpy(bare, ours, sizeof(bare));
        bare[3] = 0;
        g_assert_cmpint(stun_parse_binding_request(bare, sizeof(bare), NULL), ==, 0);
}

static void test_requests_refused(void)
{
        uint8_t b[sizeof(req5769) + 4];

        /* Every truncation and one extension: the length must match exactly. */
        for (size_t n = 0; n < sizeof(req5769); n++) {
                uint8_t *copy = g_memdup2(req5769, n);
                g_assert_cmpint(stun_parse_binding_request(copy, n, NULL), ==, -EBADMSG);
                g_free(copy);
        }
        memcpy(b, req5769, sizeof(req5769));
        memset(b + sizeof(req5769), 0, 4);
        g_assert_cmpint(stun_parse_binding_request(b, sizeof(b), NULL), ==, -EBADMSG);
        g_assert_cmpint(stun_parse_binding_request(NULL, 0, NULL), ==, -EBADMSG);

        struct {
                size_t off;
                uint8_t value;
        } changes[] = {
                {0, 0x40},  /* top bits set: not STUN (WireGuard's type 1 starts 0x01 0x00) */
                {1, 0x11},  /* another method */
                {0, 0x01},  /* a success response, not a request */
                {4, 0x00},  /* the cookie */
                {3, 0x57},  /* a length that is no multiple of 4 */
                {23, 0x70}, /* an attribute running past the end */
        };
        for (size_t i = 0; i < G_N_ELEMENTS(changes); i++) {
                memcpy(b, req5769, sizeof(req5769));
                b[changes[i].off] = changes[i].value;
                g_assert_cmpint(stun_parse_binding_request(b, sizeof(req5769), NULL), ==, -EBADMSG);
        }
}

static void test_answers(void)
{
        static const char *const addrs[] = {"198.18.51.1", "2001:db8::7"};
        uint8_t out[STUN_RESPONSE_MAX];

        for (size_t i = 0; i < G_N_ELEMENTS(addrs); i++) {
                int family, got_family;
                NmInAddr a, got;
                uint16_t got_port;
                g_assert_cmpint(nm_addr_parse(addrs[i], &family, &a), ==, 0);
                size_t n = stun_binding_success(out, sizeof(out), txid5769, family, &a, 23456);
                g_assert_cmpuint(n, ==, family == AF_INET ? 32 : 44);
                g_assert_cmpuint(n, <=, STUN_REQUEST_SIZE);
                g_assert_cmpint(stun_parse_binding_response(out, n, txid5769, &got_family, &got, &got_port),
                                ==, 0);
                g_assert_cmpint(got_family, ==, family);
                g_assert_cmpmem(got.bytes, family == AF_INET ? 4 : 16, a.bytes, family == AF_INET ? 4 : 16);
                g_assert_cmpuint(got_port, ==, 23456);
                /* Too small a buffer: nothing written. */
                g_assert_cmpuint(stun_binding_success(out, n - 1, txid5769, family, &a, 1), ==, 0);
        }
        NmInAddr none = {};
        g_assert_cmpuint(stun_binding_success(out, sizeof(out), txid5769, AF_UNIX, &none, 1), ==, 0);
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/stun-codec/requests-accepted", test_requests_accepted);
        g_test_add_func("/stun-codec/requests-refused", test_requests_refused);
        g_test_add_func("/stun-codec/answers", test_answers);
        return g_test_run();
}
