#!/usr/bin/env python3
"""Known-answer SRTP/SRTCP packets computed independently of hookswitch's TypeScript.

Uses only Python's `cryptography` (AES-128-CTR) and the standard library's hmac/hashlib,
following RFC 3711 §4.1.1 (counter block), §4.2 (HMAC-SHA1 over packet || ROC), §4.3 (AES-CM
PRF, key_derivation_rate 0) and §3.4 (SRTCP trailer). test/media/srtp/srtp.ts embeds the output;
run `python3 test/media/srtp/independent-vectors.py` (Debian: python3-cryptography) to
reproduce it.
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MASTER_KEY = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")  # RFC 3711 B.3
MASTER_SALT = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")


def ctr(key, block, data):
    enc = Cipher(algorithms.AES(key), modes.CTR(block)).encryptor()
    return enc.update(data) + enc.finalize()


def prf(label, n):
    x = bytearray(MASTER_SALT)
    x[7] ^= label
    return ctr(MASTER_KEY, bytes(x) + b"\0\0", b"\0" * n)


def iv(salt, ssrc, index):
    v = int.from_bytes(salt, "big") << 16
    v ^= ssrc << 64
    v ^= index << 16
    return v.to_bytes(16, "big")


def srtp(packet, header_len, roc, tag_len):
    k_e, k_a, k_s = prf(0, 16), prf(1, 20), prf(2, 14)
    ssrc = struct.unpack(">I", packet[8:12])[0]
    seq = struct.unpack(">H", packet[2:4])[0]
    body = packet[:header_len] + ctr(k_e, iv(k_s, ssrc, (roc << 16) | seq), packet[header_len:])
    tag = hmac.new(k_a, body + struct.pack(">I", roc), hashlib.sha1).digest()[:tag_len]
    return body + tag


def srtcp(packet, index):
    k_e, k_a, k_s = prf(3, 16), prf(4, 20), prf(5, 14)
    ssrc = struct.unpack(">I", packet[4:8])[0]
    body = packet[:8] + ctr(k_e, iv(k_s, ssrc, index), packet[8:]) + struct.pack(">I", 0x80000000 | index)
    return body + hmac.new(k_a, body, hashlib.sha1).digest()[:10]


# RTP, V=2 X=1 CC=1, M=1 PT=0, SEQ 2, TS 0x01020304, SSRC 0x11223344, CSRC 0x55667788,
# extension profile 0xBEDE with one word, then 20 octets of payload; sent with ROC 1.
RTP = bytes.fromhex("9180000201020304112233445566778" "8BEDE000110AABBCC") + bytes(range(20))
print("srtp80_roc1", srtp(RTP, 24, 1, 10).hex())
print("srtp32_roc1", srtp(RTP, 24, 1, 4).hex())
# RTCP receiver report, SSRC 0x11223344, one report block of 24 octets; SRTCP index 0.
RTCP = bytes.fromhex("81c90007" "11223344" "cafebabe") + bytes(range(20))
print("srtcp_index0", srtcp(RTCP, 0).hex())
