"""CRC-32C (Castagnoli), the checksum libcsp appends to CSP packets.

CSP calls it "CRC32", but it is not the zlib/Ethernet CRC-32: libcsp uses the Castagnoli polynomial
0x1EDC6F41 processed LSB-first (the *reflected* form 0x82F63B78), with the register preset to
0xFFFFFFFF and the result inverted. Catalogue check value: ``crc32c(b"123456789") == 0xE3069283``.
On the wire the 32-bit result follows the data big-endian (libcsp ``htobe32``).

How the table method works: a reflected CRC register absorbs one byte by XOR-ing it into its low byte,
then shifting right eight times, XOR-ing the polynomial whenever a 1 falls out. Those eight steps depend
only on the low byte, so their combined effect is precomputed for all 256 values (``TABLE``, whose entry
1 is 0xF26B8303 and entry 128 the polynomial itself, as in libcsp's ``csp_crc32.c``) and each byte costs
one look-up. Because the CRC is linear over GF(2), the same idea stretches to wider steps: the effect of
four bytes on the register splits into the effect of its low 16 bits pushed through four byte-steps and
of its high 16 bits pushed through two (two 65536-entry tables). In pure Python the interpreter's cost
per loop turn dominates, so taking four bytes per turn is roughly three times faster than one; short
inputs and the tail still go a byte at a time. The Python standard library has no CRC-32C.
"""

from __future__ import annotations

import sys

POLYNOMIAL_REFLECTED = 0x82F63B78
CHECK_VALUE = 0xE3069283  # crc32c(b"123456789")


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ POLYNOMIAL_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


TABLE: tuple[int, ...] = _make_table()


def _shift_table(table: tuple[int, ...]) -> tuple[int, ...]:
    """Entries of ``table`` pushed through one more zero byte (slicing-by-N tables)."""
    return tuple(TABLE[c & 0xFF] ^ (c >> 8) for c in table)


_T1 = _shift_table(TABLE)  # a byte followed by one zero byte
_T2 = _shift_table(_T1)
_T3 = _shift_table(_T2)
# Register bits 16..31 after XOR-ing in a little-endian word: they are bytes 2 and 3 of the word, which
# pass through two byte-steps; bits 0..15 (bytes 0 and 1) pass through four. Index = lo byte | hi byte << 8.
_HIGH16 = tuple(_T1[lo] ^ TABLE[hi] for hi in range(256) for lo in range(256))
_LOW16 = tuple(_T3[lo] ^ _T2[hi] for hi in range(256) for lo in range(256))

# Below this many bytes the word loop's set-up costs more than it saves.
_WORD_THRESHOLD = 16
# The word loop reads native-order 32-bit words; the tables assume little-endian ones.
_LITTLE_ENDIAN = sys.byteorder == "little"


def crc32c_update(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Continue a CRC over more data; ``crc`` is a previous result (0 to start).

    The inversion at both ends is what lets results chain: ``crc32c(a + b) == crc32c_update(crc32c(a), b)``.
    """
    table = TABLE  # local names: global look-ups would dominate the pure-Python inner loops
    crc ^= 0xFFFFFFFF
    n = len(data)
    start = 0
    if n >= _WORD_THRESHOLD and _LITTLE_ENDIAN:
        low, high = _LOW16, _HIGH16
        start = n & ~3
        for word in memoryview(data)[:start].cast("B").cast("I"):
            crc ^= word
            crc = low[crc & 0xFFFF] ^ high[crc >> 16]
    for byte in memoryview(data)[start:].cast("B") if start else data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C of ``data`` as an unsigned 32-bit integer."""
    return crc32c_update(0, data)
