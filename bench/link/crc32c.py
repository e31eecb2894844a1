"""CRC-32C (Castagnoli), the checksum libcsp appends to CSP packets.

CSP calls it "CRC32", but it is not the zlib/Ethernet CRC-32: libcsp uses the Castagnoli polynomial
0x1EDC6F41, processed LSB-first (the *reflected* form 0x82F63B78), with the register preset to
0xFFFFFFFF and the result inverted. The standard check value is ``crc32c(b"123456789") == 0xE3069283``.
On the wire the 32-bit result follows the data big-endian (libcsp ``htobe32``).

The Python standard library has no CRC-32C, so this is the classic byte-at-a-time table method: one
256-entry table holds the effect of shifting each possible low byte through eight polynomial steps,
and each input byte costs one XOR, one table look-up and one shift.
"""

from __future__ import annotations

POLYNOMIAL_REFLECTED = 0x82F63B78
CHECK_VALUE = 0xE3069283  # crc32c(b"123456789"), the catalogue check value


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ POLYNOMIAL_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


TABLE: tuple[int, ...] = _make_table()


def crc32c_update(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Continue a CRC over more data; ``crc`` is a previous result (0 to start).

    The inversion at both ends is what lets results chain: ``crc32c(a + b) == crc32c_update(crc32c(a), b)``.
    """
    table = TABLE  # local name: attribute/global look-ups dominate a pure-Python inner loop
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``data`` as an unsigned 32-bit integer."""
    return crc32c_update(0, data)
