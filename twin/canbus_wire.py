"""CAN frames as the simulated bus carries them, their length in bits, and their two text encodings.

Pure functions only (no I/O, no asyncio) so that the wire formats can be tested on their own; the hub in
`twin.canbus` uses them on its hot path.

Encodings (python-can 4.6.1 is the reference client; socketcand `src/state_raw.c` the reference server):

* socketcand RAW mode, server → client: ``< frame %08X|%03X <sec>.<usec> <DATA> >`` with the data uppercase,
  zero-padded, without spaces (so a DLC 0 frame has two spaces before ``>``); error frames
  ``< error %03X <sec>.<usec> >`` carrying the SocketCAN error class. Remote frames are *not* forwarded in
  RAW mode (socketcand leaves them as a TODO), and neither does this twin, so the bench cannot come to rely on
  something the real daemon does not do.
* socketcand client → server: ``< send <id> <dlc> <b0> … >``; the id is extended iff it has 8 hex digits, the DLC
  is decimal 0..8, the bytes are 1–2 hex digits each (python-can sends them lowercase and unpadded).
* slcan/Lawicel: ``t<iii><l><dd…>``, ``T<iiiiiiii><l><dd…>``, ``r<iii><l>``, ``R<iiiiiiii><l>``, each ended by
  ``\\r``; no timestamp suffix (python-can would read it as data).

Bit lengths (ISO 11898-1 classic CAN data/remote frame, n data bytes, 0 for remote frames):

* unstuffed: ``47 + 8n`` bits for an 11-bit id, ``67 + 8n`` for a 29-bit id. That is SOF..DLC (19 / 39 bits),
  the data, the 15-bit CRC, then 13 bits that are never stuffed (CRC delimiter 1, ACK slot + delimiter 2,
  EOF 7, intermission 3). Extended, 8 bytes: 131 bits; standard, 8 bytes: 111 bits.
* worst case with bit stuffing: one stuff bit per 4 bits after the first of the stuffed span SOF..CRC
  (``g + 8n`` bits long, ``g`` = 34 standard / 54 extended): ``+ floor((g + 8n - 1) / 4)``.
  Extended, 8 bytes: 131 + 29 = 160 bits; standard, 8 bytes: 111 + 24 = 135 bits (the textbook figures).
The real count lies in between and depends on the id and data; computing it exactly (CRC-15 plus a bit scan)
costs more than the whole fan-out, so the hub reports both bounds.
"""

from __future__ import annotations

import binascii
import enum
import itertools
import re
from dataclasses import dataclass, field

CAN_SFF_MAX = 0x7FF
CAN_EFF_MAX = 0x1FFFFFFF
MAX_DLC = 8


class CanErrorClass(enum.IntFlag):
    """SocketCAN error classes (``linux/can/error.h``), the number socketcand prints in ``< error XXX … >``."""

    TX_TIMEOUT = 0x001
    LOSTARB = 0x002
    CRTL = 0x004
    PROT = 0x008
    TRX = 0x010
    ACK = 0x020
    BUSOFF = 0x040
    BUSERROR = 0x080
    RESTARTED = 0x100


@dataclass(frozen=True, slots=True)
class CanFrame:
    """One classic CAN frame on the simulated bus.

    `dlc` defaults to ``len(data)``; a remote frame carries no data but may request `dlc` bytes. An error frame
    has `is_error_frame` set and its `arbitration_id` holds the `CanErrorClass` bits (as in SocketCAN).
    `timestamp` (UNIX seconds) is stamped by the hub when the frame goes on the bus.
    """

    arbitration_id: int
    data: bytes = b""
    is_extended_id: bool = True
    is_remote_frame: bool = False
    is_error_frame: bool = False
    dlc: int = field(default=-1)
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        limit = CAN_EFF_MAX if self.is_extended_id or self.is_error_frame else CAN_SFF_MAX
        if not 0 <= self.arbitration_id <= limit:
            raise ValueError(f"arbitration id 0x{self.arbitration_id:X} out of range 0..0x{limit:X}")
        if len(self.data) > MAX_DLC:
            raise ValueError(f"classic CAN carries at most 8 data bytes, got {len(self.data)}")
        if self.is_remote_frame and self.data:
            raise ValueError("a remote frame carries no data")
        if self.dlc == -1:
            object.__setattr__(self, "dlc", len(self.data))
        elif not 0 <= self.dlc <= MAX_DLC or (not self.is_remote_frame and self.dlc != len(self.data)):
            raise ValueError(f"DLC {self.dlc} does not fit {len(self.data)} data bytes")


# --- bit lengths -------------------------------------------------------------------------------------------

_UNSTUFFED_TAIL = 13  # CRC delimiter + ACK slot + ACK delimiter + EOF + intermission
_STUFFED_HEAD = {False: 19 + 15, True: 39 + 15}  # SOF..DLC + CRC: the span subject to stuffing, without data


def frame_bits(is_extended_id: bool, n_data_bytes: int) -> tuple[int, int]:
    """(unstuffed, worst-case stuffed) length in bits of a data frame with `n_data_bytes` (0 for remote)."""
    stuffed_span = _STUFFED_HEAD[is_extended_id] + 8 * n_data_bytes
    nominal = stuffed_span + _UNSTUFFED_TAIL
    return nominal, nominal + (stuffed_span - 1) // 4


# Precomputed: the hub looks one up per frame.
BITS: dict[tuple[bool, int], tuple[int, int]] = {
    (ext, n): frame_bits(ext, n) for ext in (False, True) for n in range(MAX_DLC + 1)
}


def max_frame_rate(bitrate: int, *, is_extended_id: bool = True, n_data_bytes: int = 8) -> tuple[float, float]:
    """Frames/s a saturated bus carries back to back: (without stuffing, with worst-case stuffing)."""
    nominal, worst = BITS[(is_extended_id, n_data_bytes)]
    return bitrate / nominal, bitrate / worst


# --- timestamps ----------------------------------------------------------------------------------------------


def sec_usec(timestamp: float) -> bytes:
    """``<sec>.<usec>`` as socketcand prints a struct timeval (6 fractional digits, never rounded up to 1.0)."""
    sec, usec = divmod(int(timestamp * 1_000_000), 1_000_000)
    return b"%d.%06d" % (sec, usec)


# --- socketcand ------------------------------------------------------------------------------------------------


def socketcand_frame(frame: CanFrame) -> bytes | None:
    """The RAW-mode line for `frame`, or None for a remote frame (socketcand does not forward those)."""
    if frame.is_error_frame:
        return b"< error %03X %s >" % (frame.arbitration_id, sec_usec(frame.timestamp))
    if frame.is_remote_frame:
        return None
    template = b"< frame %08X %s %s >" if frame.is_extended_id else b"< frame %03X %s %s >"
    return template % (frame.arbitration_id, sec_usec(frame.timestamp), frame.data.hex().upper().encode())


_HEX_ID = re.compile(rb"[0-9A-Fa-f]{1,8}")
_HEX_DIGITS = "0123456789abcdefABCDEF"
# Every 1–2 digit hex token in any case → its value: a dict hit is the cheapest strict parse of a data byte.
_BYTE_TOKENS: dict[bytes, int] = {
    "".join(t).encode(): int("".join(t), 16) for width in (1, 2) for t in itertools.product(_HEX_DIGITS, repeat=width)
}


def parse_socketcand_send(tokens: list[bytes]) -> tuple[int, bool, bytes]:
    """Parse the tokens of ``< send ID DLC b0 … >`` (``tokens[0]`` is ``send``) → (id, extended, data).

    Raises ValueError naming what is wrong. Stricter than socketcand's sscanf where sscanf would silently
    truncate (ids too large for their width, bytes with more than 2 digits, trailing junk).
    """
    if len(tokens) < 3:
        raise ValueError("send needs an id and a DLC")
    id_token, dlc_token, byte_tokens = tokens[1], tokens[2], tokens[3:]
    if not _HEX_ID.fullmatch(id_token):
        raise ValueError(f"bad CAN id {id_token!r}")
    extended = len(id_token) == 8
    can_id = int(id_token, 16)
    if can_id > (CAN_EFF_MAX if extended else CAN_SFF_MAX):
        raise ValueError(f"CAN id {id_token!r} too large for a {'29' if extended else '11'}-bit id")
    if not (len(dlc_token) == 1 and dlc_token.isdigit()) or int(dlc_token) > MAX_DLC:
        raise ValueError(f"bad DLC {dlc_token!r}")
    dlc = int(dlc_token)
    if len(byte_tokens) != dlc:
        raise ValueError(f"DLC {dlc} but {len(byte_tokens)} data bytes")
    try:
        data = bytes([_BYTE_TOKENS[t] for t in byte_tokens])
    except KeyError as exc:
        raise ValueError(f"bad data byte {exc.args[0]!r}") from None
    return can_id, extended, data


# --- slcan / Lawicel -----------------------------------------------------------------------------------------


def slcan_frame(frame: CanFrame) -> bytes | None:
    """The Lawicel receive line for `frame`, or None for an error frame (Lawicel has no way to say it)."""
    if frame.is_error_frame:
        return None
    if frame.is_remote_frame:
        return (b"R%08X%d\r" if frame.is_extended_id else b"r%03X%d\r") % (frame.arbitration_id, frame.dlc)
    head = b"T%08X%d" if frame.is_extended_id else b"t%03X%d"
    return head % (frame.arbitration_id, frame.dlc) + frame.data.hex().upper().encode() + b"\r"


_SLCAN_FRAME = re.compile(rb"(?:([tr])([0-9A-Fa-f]{3})|([TR])([0-9A-Fa-f]{8}))([0-8])([0-9A-Fa-f]*)")


def parse_slcan_frame(line: bytes) -> CanFrame:
    """Parse a Lawicel transmit command (``t``, ``T``, ``r``, ``R``; without the ``\\r``) into a frame.

    Raises ValueError naming what is wrong.
    """
    match = _SLCAN_FRAME.fullmatch(line)
    if match is None:
        raise ValueError(f"not a Lawicel frame: {line[:40]!r}")
    kind_std, id_std, kind_ext, id_ext, dlc_text, hex_data = match.groups()
    kind = kind_std or kind_ext
    can_id = int(id_std or id_ext, 16)
    dlc = int(dlc_text)
    extended = kind_ext is not None
    if extended and can_id > CAN_EFF_MAX:
        raise ValueError(f"CAN id {id_ext!r} too large for a 29-bit id")
    if kind in (b"r", b"R"):
        if hex_data:
            raise ValueError("a remote frame carries no data")
        return CanFrame(can_id, b"", is_extended_id=extended, is_remote_frame=True, dlc=dlc)
    if len(hex_data) != 2 * dlc:
        raise ValueError(f"DLC {dlc} but {len(hex_data)} hex digits of data")
    return CanFrame(can_id, binascii.unhexlify(hex_data), is_extended_id=extended)
