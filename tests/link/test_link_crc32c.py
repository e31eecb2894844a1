"""CRC-32C against the catalogue check value, libcsp's table and a bit-by-bit reference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.link.crc32c import CHECK_VALUE, TABLE, crc32c, crc32c_update


def bitwise_crc32c(data: bytes) -> int:
    """The definition: reflected polynomial 0x82F63B78, one bit at a time."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_check_value() -> None:
    assert crc32c(b"123456789") == CHECK_VALUE == 0xE3069283


def test_table_matches_libcsp() -> None:
    # src/csp_crc32.c: entry 1 and entry 128 of the precomputed table.
    assert TABLE[0] == 0
    assert TABLE[1] == 0xF26B8303
    assert TABLE[128] == 0x82F63B78


def test_empty_input() -> None:
    assert crc32c(b"") == 0


def test_every_length_around_the_word_loop_threshold() -> None:
    data = bytes((i * 37 + 11) & 0xFF for i in range(80))
    for n in range(len(data) + 1):
        assert crc32c(data[:n]) == bitwise_crc32c(data[:n]), n


@given(st.binary(max_size=300))
def test_matches_bitwise_reference(data: bytes) -> None:
    assert crc32c(data) == bitwise_crc32c(data)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_chaining(a: bytes, b: bytes) -> None:
    assert crc32c_update(crc32c(a), b) == crc32c(a + b)


@given(st.binary(max_size=100))
def test_accepts_bytes_like(data: bytes) -> None:
    assert crc32c(bytearray(data)) == crc32c(memoryview(data)) == crc32c(data)


def test_unaligned_view() -> None:
    data = bytes(range(100))
    assert crc32c(memoryview(data)[3:97]) == bitwise_crc32c(data[3:97])
