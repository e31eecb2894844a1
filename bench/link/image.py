"""Payloads of the image downlink service (the ICD's ``nodes.PAYLOAD.ports.IMAGE``, docs/icd.md).

A mission service on an application port, in the shape of libcsp's own request/reply services: the bench asks
for ``length`` bytes (at most :data:`CHUNK_MAX`) of image ``capture`` from ``offset``; the payload answers with
the same capture and offset, a status, and the bytes (fewer at the end of the image, none past it). All integers
big-endian.

=========  ==========================================  ==================================================
direction  payload                                     meaning
=========  ==========================================  ==================================================
request    uint32 capture, uint32 offset, uint16 len   ``capture`` as in the CAPTURE_DONE event
reply      uint32 capture, uint32 offset, uint8 status  0 OK + the bytes, 1 no such image, 2 bad range
=========  ==========================================  ==================================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from bench.link.csp import CspError

__all__ = ["CHUNK_MAX", "ImageChunk", "ImageError", "decode_reply", "encode_request"]

CHUNK_MAX: Final = 192  # bytes per reply: a 201-byte packet, 26 CAN frames
_REQUEST: Final = struct.Struct(">IIH")
_REPLY: Final = struct.Struct(">IIB")
STATUS: Final = {0: "OK", 1: "no such image", 2: "offset or length out of range"}


class ImageError(CspError):
    """An image reply that does not have the service's shape, or one that refuses the request."""


@dataclass(frozen=True, slots=True)
class ImageChunk:
    capture: int
    offset: int
    data: bytes


def encode_request(capture: int, offset: int, length: int) -> bytes:
    if not 0 < length <= CHUNK_MAX:
        raise ImageError(f"image chunk length {length} outside 1..{CHUNK_MAX}")
    if not (0 <= capture <= 0xFFFFFFFF and 0 <= offset <= 0xFFFFFFFF):
        raise ImageError(f"capture {capture} / offset {offset} do not fit in uint32")
    return _REQUEST.pack(capture, offset, length)


def decode_reply(payload: bytes) -> ImageChunk:
    """The reply's chunk; :class:`ImageError` when it is malformed or the payload refused the request."""
    if len(payload) < _REPLY.size:
        raise ImageError(f"image reply of {len(payload)} bytes is shorter than its {_REPLY.size}-byte header")
    capture, offset, status = _REPLY.unpack_from(payload)
    if status != 0:
        raise ImageError(f"image {capture} at offset {offset}: {STATUS.get(status, f'status {status}')}")
    data = payload[_REPLY.size :]
    if len(data) > CHUNK_MAX:
        raise ImageError(f"image reply carries {len(data)} bytes, more than the service's {CHUNK_MAX}")
    return ImageChunk(capture, offset, data)
