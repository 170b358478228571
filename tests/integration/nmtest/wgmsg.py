"""WireGuard handshake initiations (message type 1) built in Python, independently of netmakerd's C
code: the Noise_IKpsk2 construction of the WireGuard paper (§5.4.2) with hashlib's BLAKE2s and
PyNaCl's X25519 and ChaCha20-Poly1305. For tests of the server's endpoint observer; also a STUN
Binding request and the reading of its answer.

    msg = initiation(host.wg.secret, observer_public_key, timestamp=time.time())
    sock.sendto(msg, (server_ip, udp_port))
    stun_request(txid, padded=True); stun_mapped(answer, txid) -> ("198.18.50.1", 20001)
"""

import hashlib
import hmac
import os
import socket
import struct
import time

from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_encrypt, crypto_scalarmult,
                           crypto_scalarmult_base)

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"


def _hash(*parts):
    h = hashlib.blake2s()
    for p in parts:
        h.update(p)
    return h.digest()


def _kdf(n, key, data):
    t0 = hmac.new(key, data, hashlib.blake2s).digest()
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = hmac.new(t0, prev + bytes([i]), hashlib.blake2s).digest()
        out.append(prev)
    return out


def tai64n(t):
    seconds = int(t)
    return struct.pack(">QI", (1 << 62) + 10 + seconds, int((t - seconds) * 1e9))


def initiation(initiator_secret: bytes, responder_public: bytes, timestamp=None, sender_index=None) -> bytes:
    """A handshake initiation from the key pair of `initiator_secret` to `responder_public`, with
    TAI64N `timestamp` (Unix seconds, float; default now) and a zero mac2."""
    ts = tai64n(time.time() if timestamp is None else timestamp)
    c = _hash(CONSTRUCTION)
    h = _hash(_hash(c, IDENTIFIER), responder_public)
    e_secret = os.urandom(32)
    e_public = crypto_scalarmult_base(e_secret)
    c = _kdf(1, c, e_public)[0]
    h = _hash(h, e_public)
    c, k = _kdf(2, c, crypto_scalarmult(e_secret, responder_public))
    static = crypto_aead_chacha20poly1305_ietf_encrypt(crypto_scalarmult_base(initiator_secret), h, b"\0" * 12, k)
    h = _hash(h, static)
    c, k = _kdf(2, c, crypto_scalarmult(initiator_secret, responder_public))
    sealed_ts = crypto_aead_chacha20poly1305_ietf_encrypt(ts, h, b"\0" * 12, k)
    index = os.urandom(4) if sender_index is None else struct.pack("<I", sender_index)
    msg = b"\x01\0\0\0" + index + e_public + static + sealed_ts
    mac1 = hashlib.blake2s(msg, digest_size=16, key=_hash(LABEL_MAC1, responder_public)).digest()
    return msg + mac1 + b"\0" * 16


def stun_request(txid: bytes, padded=True) -> bytes:
    """A Binding request; padded with SOFTWARE to 48 bytes as netclientd sends it, or bare (20)."""
    if not padded:
        return b"\x00\x01\x00\x00\x21\x12\xa4\x42" + txid
    software = b"nmtest STUN request....."
    return b"\x00\x01" + struct.pack("!H", 4 + len(software)) + b"\x21\x12\xa4\x42" + txid + \
        b"\x80\x22" + struct.pack("!H", len(software)) + software


def stun_mapped(answer: bytes, txid: bytes):
    """(address, port) of the XOR-MAPPED-ADDRESS of a Binding success answer to `txid`, or None."""
    if len(answer) < 32 or answer[0:2] != b"\x01\x01" or answer[8:20] != txid:
        return None
    off = 20
    while off + 4 <= len(answer):
        atype, alen = struct.unpack("!HH", answer[off:off + 4])
        v = answer[off + 4:off + 4 + alen]
        if atype == 0x0020 and len(v) >= 8 and v[1] == 1:
            port = struct.unpack("!H", v[2:4])[0] ^ 0x2112
            addr = bytes(a ^ b for a, b in zip(v[4:8], answer[4:8]))
            return socket.inet_ntoa(addr), port
        off += 4 + ((alen + 3) & ~3)
    return None
