"""PAYLOAD: the imager (power = the EPS PAYLOAD output), captures that take their exposure time, and the image
downlink service on the ICD's IMAGE port (docs/icd.md: request capture, offset, length; reply with the bytes)."""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from twin.icd import Command
from twin.nodes.base import Deferred, Node, Value
from twin.pus import Failure

__all__ = ["PayloadNode"]

READOUT_S: Final = 0.05  # sensor readout and storage after the exposure
IMAGES_KEPT: Final = 4  # the last images stay readable (on flash: they survive reboots)
IMAGE_REQUEST: Final = struct.Struct(">IIH")  # capture, offset, length
IMAGE_REPLY: Final = struct.Struct(">IIB")  # capture, offset, status; then the bytes
IMAGE_CHUNK_MAX: Final = 192
IMAGE_OK, IMAGE_UNKNOWN, IMAGE_BAD_RANGE = 0, 1, 2
STATUS_NONE, STATUS_OK, STATUS_FAILED = 0, 1, 2
REASON_IMAGER_OFF, REASON_POWER_LOST = 1, 2


class PayloadNode(Node):
    def __post_init__(self) -> None:
        self._rng = self.host.rng(f"node.{self.name}")
        self._pixels = self.host.rng(f"node.{self.name}.image")  # a stream of its own: images shift no noise
        self.captures = 0
        self.last_status = STATUS_NONE
        self.storage_kib = 0  # on flash: survives reboots
        self.images: OrderedDict[int, bytes] = OrderedDict()  # capture number → stored bytes
        self.last_image_crc = 0
        self.last_image_size = 0

    def reset(self, t: float) -> None:
        self.captures = 0
        self.last_status = STATUS_NONE

    def imager_on(self) -> bool:
        return bool(self.host.loads.get("payload", False))

    def hk_values(self, sid: int) -> dict[str, Value]:
        return {
            "IMAGER_POWER": self.imager_on(),
            "CAPTURES": self.captures,
            "LAST_CAPTURE_STATUS": self.last_status,
            "STORAGE_USED": self.storage_kib,
            "IMAGER_TEMP": (24.0 if self.imager_on() else 18.0) + float(self._rng.normal(0.0, 0.1)),
            "LAST_IMAGE_SIZE": self.last_image_size,
            "LAST_IMAGE_CRC": self.last_image_crc,
        }

    def _store_image(self, capture: int) -> None:
        """Read the sensor out: the imager computes the CRC of what it read, then writes it to flash."""
        image = self._pixels.bytes(int(self.param("IMAGE_SIZE_KB")) * 1024)
        self.last_image_crc, self.last_image_size = zlib.crc32(image), len(image)
        if self.host.defects.active("PAYLOAD_IMAGE_CRC_BAD"):
            flipped = bytearray(image)
            flipped[len(image) // 3] ^= 0x10  # one bit flipped on its way to flash, after the CRC was taken
            image = bytes(flipped)
        self.images[capture] = image
        self.images.move_to_end(capture)
        while len(self.images) > IMAGES_KEPT:
            self.images.popitem(last=False)

    def serve(self, port: int, data: bytes, reply: Callable[[bytes], None]) -> None:
        if port != self.icd_node.port("IMAGE") or len(data) != IMAGE_REQUEST.size:
            return  # not ours, or a malformed request: dropped, as libcsp drops what no socket takes
        capture, offset, length = IMAGE_REQUEST.unpack(data)
        image = self.images.get(capture)
        if image is None:
            reply(IMAGE_REPLY.pack(capture, offset, IMAGE_UNKNOWN))
        elif offset > len(image) or not 0 < length <= IMAGE_CHUNK_MAX:
            reply(IMAGE_REPLY.pack(capture, offset, IMAGE_BAD_RANGE))
        else:
            reply(IMAGE_REPLY.pack(capture, offset, IMAGE_OK) + image[offset : offset + length])

    def _fail(self, reason: int) -> Failure:
        self.last_status = STATUS_FAILED
        self.emit("CAPTURE_FAILED", reason)
        return Failure.EXECUTION_FAILED

    def execute(self, command: Command, args: dict[str, Value]) -> Failure | Deferred | None:
        if command.name == "POWER":
            return None if self.host.set_load("payload", bool(args["on"])) else Failure.EXECUTION_FAILED
        if command.name == "CAPTURE":
            exposure_ms = int(args["exposure_ms"])
            if not self.imager_on() and not self.host.defects.active("PAYLOAD_CAPTURE_WHEN_OFF"):
                wrong = self.host.defects.active("PAYLOAD_WRONG_FAIL_REASON")
                return self._fail(REASON_POWER_LOST if wrong else REASON_IMAGER_OFF)

            def finish() -> Failure | None:
                if not self.imager_on() and not self.host.defects.active("PAYLOAD_CAPTURE_WHEN_OFF"):
                    return self._fail(REASON_POWER_LOST)
                if not self.host.defects.active("PAYLOAD_CAPTURE_NOT_COUNTED"):
                    self.captures += 1
                self.storage_kib += int(self.param("IMAGE_SIZE_KB"))
                self._store_image(self.captures)
                self.last_status = STATUS_OK
                self.emit("CAPTURE_DONE", self.captures, exposure_ms)
                return None

            readout_s = self.host.defects.value("PAYLOAD_SLOW_READOUT") or READOUT_S
            return Deferred(self.now() + exposure_ms / 1000.0 + readout_s, finish)
        return Failure.EXECUTION_FAILED

    def mode_name(self) -> str:
        if not self.alive:
            return "OFF"
        return "IMAGER_ON" if self.imager_on() else "IMAGER_OFF"
