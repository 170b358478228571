/* STUN Binding messages (RFC 5389): the request netclientd sends and the answer it reads; the
 * request netmakerd's responder reads and the answer it sends. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

#define STUN_HEADER_SIZE   20
#define STUN_TXID_SIZE     12
#define STUN_MAGIC_COOKIE  0x2112A442u
#define STUN_SOFTWARE_SIZE 24
/* A request with a SOFTWARE attribute: as large as the largest answer (IPv6, 44 bytes). */
#define STUN_REQUEST_SIZE (STUN_HEADER_SIZE + 4 + STUN_SOFTWARE_SIZE)
#define STUN_RESPONSE_MAX (STUN_HEADER_SIZE + 8 + 16)

/* A Binding request with transaction id `txid` and a SOFTWARE attribute that pads it to
 * STUN_REQUEST_SIZE bytes. */
void stun_binding_request(uint8_t out[STUN_REQUEST_SIZE], const uint8_t txid[STUN_TXID_SIZE]);

/* Reads a Binding success response to the request with `txid`: the XOR-MAPPED-ADDRESS (or, from
 * old servers, MAPPED-ADDRESS). Returns 0; -EBADMSG when it is not a well-formed STUN message,
 * -ESRCH when it is one but not a success response to this transaction, -ENOENT when it carries
 * no usable address. Never reads outside buf[0..len). */
int stun_parse_binding_response(const uint8_t *buf, size_t len, const uint8_t txid[STUN_TXID_SIZE],
                                int *ret_family, NmInAddr *ret_addr, uint16_t *ret_port);

/* Whether buf[0..len) is exactly one well-formed Binding request (its attributes tiling it); its
 * transaction id in *ret_txid. Returns 0 or -EBADMSG. */
int stun_parse_binding_request(const uint8_t *buf, size_t len, uint8_t ret_txid[STUN_TXID_SIZE]);
/* Writes the Binding success response with XOR-MAPPED-ADDRESS `addr`:`port` (family AF_INET or
 * AF_INET6) into out[0..size): its length (32 or 44 bytes), or 0 when it does not fit. */
size_t stun_binding_success(uint8_t *out, size_t size, const uint8_t txid[STUN_TXID_SIZE], int family,
                            const NmInAddr *addr, uint16_t port);
