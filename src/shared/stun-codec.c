/* STUN messages (RFC 5389 §6, §15.1-15.2, §15.10) for both sides: the Binding request netclientd
 * sends and the answer it reads, and the request netmakerd's STUN responder reads and the answer it
 * sends. Pure functions over byte buffers, never reading outside them. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "stun-codec.h"

#define STUN_BINDING_REQUEST 0x0001
#define STUN_BINDING_SUCCESS 0x0101
#define ATTR_MAPPED_ADDRESS  0x0001
#define ATTR_XOR_MAPPED      0x0020
#define ATTR_SOFTWARE        0x8022
#define ATTR_XOR_MAPPED_OLD  0x8020 /* drafts before RFC 5389; some servers still send it */

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
        put16(p, (uint16_t)(v >> 16));
        put16(p + 2, (uint16_t)v);
}

void stun_binding_request(uint8_t out[STUN_REQUEST_SIZE], const uint8_t txid[STUN_TXID_SIZE])
{
        /* SOFTWARE (comprehension-optional, so every server takes it) makes the request as large as
         * any answer: a server that answers only requests at least as large as its answers (like
         * netmakerd) can never be used to amplify traffic. */
        static const char software[STUN_SOFTWARE_SIZE] = "netclientd STUN request.";

        put16(out, STUN_BINDING_REQUEST);
        put16(out + 2, STUN_REQUEST_SIZE - STUN_HEADER_SIZE);
        put32(out + 4, STUN_MAGIC_COOKIE);
        memcpy(out + 8, txid, STUN_TXID_SIZE);
        put16(out + 20, ATTR_SOFTWARE);
        put16(out + 22, STUN_SOFTWARE_SIZE);
        memcpy(out + 24, software, STUN_SOFTWARE_SIZE);
}

int stun_parse_binding_request(const uint8_t *buf, size_t len, uint8_t ret_txid[STUN_TXID_SIZE])
{
        size_t msglen, off;

        if (!buf || len < STUN_HEADER_SIZE || (buf[0] & 0xc0) || get32(buf + 4) != STUN_MAGIC_COOKIE)
                return -EBADMSG;
        msglen = get16(buf + 2);
        if (msglen % 4 || STUN_HEADER_SIZE + msglen != len || get16(buf) != STUN_BINDING_REQUEST)
                return -EBADMSG;
        /* The attributes must tile the message exactly; none of them changes the answer. */
        for (off = STUN_HEADER_SIZE; off < len;) {
                if (off + 4 > len)
                        return -EBADMSG;
                size_t alen = get16(buf + off + 2);
                off += 4 + ((alen + 3) & ~(size_t)3);
                if (off > len)
                        return -EBADMSG;
        }
        if (ret_txid)
                memcpy(ret_txid, buf + 8, STUN_TXID_SIZE);
        return 0;
}

size_t stun_binding_success(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_SIZE], int family,
                            const NmInAddr *addr, uint16_t port)
{
        size_t alen = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0, n = STUN_HEADER_SIZE + 8 + alen;

        if (alen == 0 || size < n)
                return 0;
        put16(out, STUN_BINDING_SUCCESS);
        put16(out + 2, (uint16_t)(8 + alen));
        put32(out + 4, STUN_MAGIC_COOKIE);
        memcpy(out + 8, txid, STUN_TXID_SIZE);
        put16(out + 20, ATTR_XOR_MAPPED);
        put16(out + 22, (uint16_t)(4 + alen));
        out[24] = 0;
        out[25] = family == AF_INET ? 0x01 : 0x02;
        put16(out + 26, port ^ (uint16_t)(STUN_MAGIC_COOKIE >> 16));
        /* The address XORed with the cookie and (IPv6) the transaction id: bytes 4-19 of the header. */
        for (size_t i = 0; i < alen; i++)
                out[28 + i] = addr->bytes[i] ^ out[4 + i];
        return n;
}

/* One (XOR-)MAPPED-ADDRESS value: 0, family, port, address. */
static int read_address(const uint8_t *v, size_t len, bool xor, const uint8_t *header, int *family,
                        NmInAddr *addr, uint16_t *port)
{
        size_t alen;

        if (len < 4)
                return -EBADMSG;
        switch (v[1]) {
        case 0x01:
                *family = AF_INET;
                alen = 4;
                break;
        case 0x02:
                *family = AF_INET6;
                alen = 16;
                break;
        default:
                return -ENOENT;
        }
        if (len < 4 + alen)
                return -EBADMSG;
        *addr = (NmInAddr){};
        memcpy(addr->bytes, v + 4, alen);
        *port = get16(v + 2);
        if (xor) {
                /* The port is XORed with the cookie's high half, the address with the cookie and
                 * (IPv6) the transaction id: bytes 4-19 of the header. */
                *port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
                for (size_t i = 0; i < alen; i++)
                        addr->bytes[i] ^= header[4 + i];
        }
        return 0;
}

int stun_parse_binding_response(const uint8_t *buf, size_t len, const uint8_t txid[STUN_TXID_SIZE],
                                int *ret_family, NmInAddr *ret_addr, uint16_t *ret_port)
{
        size_t msglen, off;
        int best = -1; /* 2: XOR-MAPPED-ADDRESS, 1: MAPPED-ADDRESS */
        int family = AF_UNSPEC;
        NmInAddr addr = {};
        uint16_t port = 0;

        if (!buf || len < STUN_HEADER_SIZE)
                return -EBADMSG;
        /* The two top bits of every STUN message are zero; the length counts the attributes and is a
         * multiple of 4; the cookie is fixed. */
        if ((buf[0] & 0xc0) || get32(buf + 4) != STUN_MAGIC_COOKIE)
                return -EBADMSG;
        msglen = get16(buf + 2);
        if (msglen % 4 || STUN_HEADER_SIZE + msglen > len)
                return -EBADMSG;
        if (get16(buf) != STUN_BINDING_SUCCESS || memcmp(buf + 8, txid, STUN_TXID_SIZE) != 0)
                return -ESRCH;

        for (off = STUN_HEADER_SIZE; off + 4 <= STUN_HEADER_SIZE + msglen;) {
                uint16_t type = get16(buf + off), alen = get16(buf + off + 2);
                const uint8_t *v = buf + off + 4;
                int f, r, rank;
                NmInAddr a;
                uint16_t p;

                if (off + 4 + alen > STUN_HEADER_SIZE + msglen)
                        return -EBADMSG;
                rank = type == ATTR_XOR_MAPPED || type == ATTR_XOR_MAPPED_OLD ? 2
                       : type == ATTR_MAPPED_ADDRESS                          ? 1
                                                                              : 0;
                if (rank > 0 && rank > best) {
                        r = read_address(v, alen, rank == 2, buf, &f, &a, &p);
                        if (r == -EBADMSG)
                                return r;
                        if (r == 0) {
                                best = rank;
                                family = f;
                                addr = a;
                                port = p;
                        }
                }
                off += 4 + (((size_t)alen + 3) & ~(size_t)3);
        }
        if (best < 0)
                return -ENOENT;
        if (ret_family)
                *ret_family = family;
        if (ret_addr)
                *ret_addr = addr;
        if (ret_port)
                *ret_port = port;
        return 0;
}
