"""CSP over CAN: the CAN Fragmentation Protocol (CFP), versions 1 and 2, as libcsp implements it.

A CAN frame carries at most 8 data bytes, a CSP packet up to a few kilobytes, so libcsp cuts each packet
into a *BEGIN* fragment and zero or more following fragments, all with 29-bit extended CAN IDs. The CAN ID
tells the receiver which packet a fragment belongs to (its *connection key*) and where it sits in the
sequence; fragments of different packets may interleave on the bus, but the fragments of one packet must
arrive in order (libcsp drops a packet at the first gap, it never reorders).

**CFP v1** (CSP v1 headers), CAN ID ``src:5 dst:5 type:1 remain:8 ident:10`` (bits 28..0):

* key = SRC | DST | IDENT, where IDENT is a 10-bit per-interface packet counter and DST the next hop;
* BEGIN (type 0) data = 4-byte CSP v1 header, 2-byte big-endian payload length, first 0..2 payload bytes;
* MORE (type 1) frames carry 8 payload bytes each (the last one fewer);
* REMAIN counts the frames still to come: ``(len + 5) // 8`` on BEGIN, then down by one to 0 on the last;
  8 bits of REMAIN bound the payload to 256 * 8 - 6 = 2042 bytes;
* complete when the received bytes reach the announced length.

**CFP v2** (CSP v2 headers), CAN ID ``prio:2 dst:14 sender:6 sc:2 fc:3 begin:1 end:1``:

* bits 28..13 of the CAN ID *are* the first 16 bits of the 48-bit CSP v2 header (prio + dst);
  the other 32 header bits are the first 4 data bytes of the BEGIN frame;
* key = PRIO | DST | SENDER | SC — SENDER is the low 6 bits of the transmitting interface's address,
  SC a 2-bit per-interface packet counter;
* FC numbers the fragments 0 (BEGIN), 1, 2, … modulo 8; BEGIN frame = 4 header bytes + up to 4 payload
  bytes, later frames up to 8; END marks the last frame. There is no length field.

The receiver (:class:`Reassembler`) follows libcsp's drop rules (``csp_can1_rx``/``csp_can2_rx``): a
fragment with an unexpected REMAIN/FC drops the packet, a BEGIN shorter than its fixed fields is dropped,
a fragment with no packet in progress is dropped, a BEGIN on a key that is still in progress restarts it,
data beyond the announced length (v1) or beyond the maximum payload drops the packet, and partial packets
untouched for ``timeout_s`` (libcsp: 1 s) are discarded. Unlike libcsp, every drop is also *counted* by
cause, because on a test bench a lost packet is a finding, not an event to forget. Nothing here raises on
bad input from the bus: malformed traffic is counted, never a crash.

The codec is pure logic: frames are ``(can_id, data)`` pairs, time comes from an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from bench.link.csp import (
    BROADCAST_V1,
    BROADCAST_V2,
    FLAG_CRC32,
    CspError,
    CspHeader,
    CspPacket,
    CspVersion,
    crc32_matches,
)

CAN_EFF_MASK = 0x1FFFFFFF  # 29-bit extended identifier
CAN_MAX_DLC = 8

# --- CFP v1 CAN ID layout (include/csp/interfaces/csp_if_can.h) ---
CFP1_SRC_OFFSET = 24
CFP1_DST_OFFSET = 19
CFP1_TYPE_OFFSET = 18
CFP1_REMAIN_OFFSET = 10
CFP1_IDENT_MASK = 0x3FF
CFP1_BEGIN = 0
CFP1_MORE = 1
CFP1_CONN_MASK = (0x1F << CFP1_SRC_OFFSET) | (0x1F << CFP1_DST_OFFSET) | CFP1_IDENT_MASK
CFP1_BEGIN_OVERHEAD = 6  # CSP v1 header (4) + length field (2)
CFP1_MAX_PAYLOAD = 256 * 8 - CFP1_BEGIN_OVERHEAD  # 2042: what 8 bits of REMAIN can count

# --- CFP v2 CAN ID layout ---
CFP2_PRIO_OFFSET = 27
CFP2_DST_OFFSET = 13
CFP2_SENDER_OFFSET = 7
CFP2_SENDER_MASK = 0x3F
CFP2_SC_OFFSET = 5
CFP2_SC_MASK = 0x3
CFP2_FC_OFFSET = 2
CFP2_FC_MASK = 0x7
CFP2_BEGIN = 1 << 1
CFP2_END = 1 << 0
CFP2_CONN_MASK = (
    (0x3 << CFP2_PRIO_OFFSET)
    | (0x3FFF << CFP2_DST_OFFSET)
    | (CFP2_SENDER_MASK << CFP2_SENDER_OFFSET)
    | (CFP2_SC_MASK << CFP2_SC_OFFSET)
)
CFP2_EXT_HEADER_SIZE = 4  # CSP v2 header bits 31..0 in the BEGIN frame

DEFAULT_TIMEOUT_S = 1.0  # libcsp PBUF_TIMEOUT_MS
DEFAULT_MAX_PAYLOAD = CFP1_MAX_PAYLOAD


@dataclass(frozen=True, slots=True)
class CanFrame:
    """One extended CAN data frame: 29-bit ID, 0..8 data bytes, optional receive time in seconds."""

    can_id: int
    data: bytes
    timestamp: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.can_id <= CAN_EFF_MASK:
            raise CspError(f"CAN ID 0x{self.can_id:X} does not fit in 29 bits")
        if len(self.data) > CAN_MAX_DLC:
            raise CspError(f"CAN frame data is {len(self.data)} bytes, classic CAN carries at most 8")


# ------------------------------------------------------------------------------------------------------
# Transmit side
# ------------------------------------------------------------------------------------------------------


def fragment_v1(packet: CspPacket, ident: int, via: int | None = None) -> list[CanFrame]:
    """Cut a packet into CFP v1 frames (``csp_can1_tx``).

    ``ident`` is the sender's running packet counter; only its low 10 bits are used, so callers may pass
    an ever-increasing count. ``via`` is the next hop when routed (the CAN DST), else the CSP destination.
    """
    header_bytes = packet.header.pack_v1()  # validates v1 ranges
    payload = packet.payload
    length = len(payload)
    if length > CFP1_MAX_PAYLOAD:
        raise CspError(f"CFP v1 carries at most {CFP1_MAX_PAYLOAD} payload bytes, packet has {length}")
    dest = packet.header.dst if via is None else via
    if not 0 <= dest <= BROADCAST_V1:
        raise CspError(f"CFP v1 next hop {dest} out of range 0..{BROADCAST_V1}")
    base = (packet.header.src << CFP1_SRC_OFFSET) | (dest << CFP1_DST_OFFSET) | (ident & CFP1_IDENT_MASK)

    first = min(length, 2)
    remain = (length + CFP1_BEGIN_OVERHEAD - 1) // 8
    frames = [
        CanFrame(
            base | (CFP1_BEGIN << CFP1_TYPE_OFFSET) | (remain << CFP1_REMAIN_OFFSET),
            header_bytes + length.to_bytes(2, "big") + payload[:first],
        )
    ]
    sent = first
    while sent < length:
        chunk = payload[sent : sent + 8]
        sent += len(chunk)
        remain = (length - sent + 7) // 8
        frames.append(CanFrame(base | (CFP1_MORE << CFP1_TYPE_OFFSET) | (remain << CFP1_REMAIN_OFFSET), chunk))
    return frames


def fragment_v2(packet: CspPacket, sender: int, sc: int) -> list[CanFrame]:
    """Cut a packet into CFP v2 frames (``csp_can2_tx``).

    ``sender`` is the transmitting interface's address (only its low 6 bits go on the wire, as in
    libcsp); ``sc`` is the sender's running packet counter (only its low 2 bits are used).
    """
    h = packet.header
    full = h.pack_v2()  # validates v2 ranges; bytes 0-1 go in the CAN ID, 2-5 in the BEGIN data
    payload = packet.payload
    length = len(payload)
    base = (
        (int.from_bytes(full[:2], "big") << CFP2_DST_OFFSET)
        | ((sender & CFP2_SENDER_MASK) << CFP2_SENDER_OFFSET)
        | ((sc & CFP2_SC_MASK) << CFP2_SC_OFFSET)
    )
    first = min(length, 4)
    begin_id = base | CFP2_BEGIN | (CFP2_END if first == length else 0)
    frames = [CanFrame(begin_id, full[2:] + payload[:first])]
    sent = first
    fc = 1
    while sent < length:
        chunk = payload[sent : sent + 8]
        sent += len(chunk)
        can_id = base | ((fc & CFP2_FC_MASK) << CFP2_FC_OFFSET) | (CFP2_END if sent == length else 0)
        frames.append(CanFrame(can_id, chunk))
        fc += 1
    return frames


class CfpEncoder:
    """A transmitting CAN interface: keeps the per-interface packet counter libcsp keeps.

    ``address`` is this interface's CSP address (it becomes the v2 SENDER field).
    """

    def __init__(self, version: int, address: int) -> None:
        if version not in (CspVersion.V1, CspVersion.V2):
            raise CspError(f"unknown CFP version {version!r} (expected 1 or 2)")
        self.version = CspVersion(version)
        self.address = address
        self.counter = 0

    def encode(self, packet: CspPacket, via: int | None = None) -> list[CanFrame]:
        if self.version == CspVersion.V1:
            frames = fragment_v1(packet, self.counter, via)
        else:
            frames = fragment_v2(packet, self.address, self.counter)
        self.counter += 1  # only after success: a rejected packet does not consume a counter value
        return frames


# ------------------------------------------------------------------------------------------------------
# Receive side
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReassemblyCounters:
    """What a :class:`Reassembler` has seen, by cause. Each dropped *packet* is counted once."""

    frames: int = 0  # CAN frames fed in
    packets: int = 0  # complete packets delivered (CRC good or not checked)
    dropped_sequence: int = 0  # REMAIN/FC out of sequence, or a new BEGIN cut a packet short
    dropped_timeout: int = 0  # partial packets discarded as stale
    dropped_short: int = 0  # BEGIN frames too short for their fixed fields
    dropped_orphan: int = 0  # non-BEGIN frames with no packet in progress (their BEGIN was lost)
    dropped_overflow: int = 0  # more data than announced (v1) or than the maximum payload
    crc_errors: int = 0  # complete packets whose CRC32 trailer did not match

    @property
    def dropped(self) -> int:
        return (
            self.dropped_sequence
            + self.dropped_timeout
            + self.dropped_short
            + self.dropped_orphan
            + self.dropped_overflow
            + self.crc_errors
        )


class _Partial:
    """A packet being reassembled (mutable working state, never handed out)."""

    __slots__ = ("buf", "expect", "header", "last_used", "length")

    def __init__(self, header: bytes, length: int, expect: int, buf: bytearray, last_used: float) -> None:
        self.header = header  # raw CSP header bytes, parsed only once the packet is complete
        self.length = length  # v1: announced payload length; v2: unused
        self.expect = expect  # v1: REMAIN of the last frame; v2: next expected FC
        self.buf = buf
        self.last_used = last_used


class PushFn(Protocol):
    def __call__(self, can_id: int, data: bytes | bytearray, timestamp: float | None = None, /) -> CspPacket | None: ...


class Reassembler:
    """Turns CAN frames back into CSP packets, one frame at a time.

    ``push(can_id, data, timestamp=None)`` is the hot path and returns the completed :class:`CspPacket`
    when a frame finishes one, else ``None`` (one frame can finish at most one packet);
    ``feed(frame)`` does the same for a :class:`CanFrame`.

    * ``version`` — 1 or 2 (CFP version, which also fixes the CSP header version);
    * ``timeout_s`` — a partial packet not touched for longer than this is discarded (libcsp: 1 s).
      Stale packets are swept, as in libcsp, whenever a new packet starts; in addition a fragment that
      arrives for a stale packet does not revive it (libcsp would accept it) and :meth:`expire` sweeps
      on demand;
    * ``clock`` — seconds, monotonic; inject a fake one in tests or the frame time when replaying a log;
    * ``check_crc`` — verify and strip the CRC32 trailer of packets flagged FCRC32 (what libcsp's router
      does next); a mismatch drops the packet and counts ``crc_errors``;
    * ``max_payload`` — v1 announces the length, bounded by the protocol to 2042; v2 has no length field
      and libcsp bounds it by its buffer size, a build option; the default keeps both at 2042;
    * ``local_address`` — if set, rewrite a broadcast destination to it, as a libcsp interface does.
    """

    push: PushFn  # bound to the version's method in __init__: one call, no per-frame dispatch

    def __init__(
        self,
        version: int = CspVersion.V1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        check_crc: bool = True,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        local_address: int | None = None,
    ) -> None:
        if version == CspVersion.V1:
            self.push = self._push_v1
            if not 0 <= max_payload <= CFP1_MAX_PAYLOAD:
                raise CspError(f"CFP v1 max_payload must be 0..{CFP1_MAX_PAYLOAD}, got {max_payload}")
        elif version == CspVersion.V2:
            self.push = self._push_v2
            if max_payload < 0:
                raise CspError(f"max_payload must not be negative, got {max_payload}")
        else:
            raise CspError(f"unknown CFP version {version!r} (expected 1 or 2)")
        if timeout_s <= 0:
            raise CspError(f"timeout_s must be positive, got {timeout_s}")
        self.version = CspVersion(version)
        self.timeout_s = timeout_s
        self.check_crc = check_crc
        self.max_payload = max_payload
        self.local_address = local_address
        self._clock = clock
        self._partials: dict[int, _Partial] = {}
        self.reset_counters()

    # -- public --------------------------------------------------------------------------------------
    def feed(self, frame: CanFrame) -> CspPacket | None:
        return self.push(frame.can_id, frame.data, frame.timestamp)

    def feed_all(self, frames: Iterable[CanFrame | tuple[int, bytes]]) -> Iterator[CspPacket]:
        """Every packet completed by ``frames`` (CanFrame objects or ``(can_id, data)`` pairs), in order."""
        push = self.push
        for frame in frames:
            packet = (
                push(frame.can_id, frame.data, frame.timestamp) if isinstance(frame, CanFrame) else push(*frame, None)
            )
            if packet is not None:
                yield packet

    def expire(self) -> int:
        """Discard partial packets older than ``timeout_s`` now; returns how many were discarded."""
        return self._sweep(self._clock())

    @property
    def pending(self) -> int:
        """Packets currently partially received."""
        return len(self._partials)

    @property
    def counters(self) -> ReassemblyCounters:
        return ReassemblyCounters(
            frames=self.frames,
            packets=self.packets,
            dropped_sequence=self.dropped_sequence,
            dropped_timeout=self.dropped_timeout,
            dropped_short=self.dropped_short,
            dropped_orphan=self.dropped_orphan,
            dropped_overflow=self.dropped_overflow,
            crc_errors=self.crc_errors,
        )

    def reset_counters(self) -> None:
        # Plain attributes rather than a dict or dataclass: incremented on every frame.
        self.frames = 0
        self.packets = 0
        self.dropped_sequence = 0
        self.dropped_timeout = 0
        self.dropped_short = 0
        self.dropped_orphan = 0
        self.dropped_overflow = 0
        self.crc_errors = 0

    def clear(self) -> None:
        """Forget partial packets without counting them (e.g. after the DUT was power-cycled on purpose)."""
        self._partials.clear()

    # -- internals -----------------------------------------------------------------------------------
    def _sweep(self, now: float) -> int:
        timeout = self.timeout_s
        stale = [key for key, p in self._partials.items() if now - p.last_used > timeout]
        for key in stale:
            del self._partials[key]
        self.dropped_timeout += len(stale)
        return len(stale)

    def _push_v1(self, can_id: int, data: bytes | bytearray, timestamp: float | None = None, /) -> CspPacket | None:
        self.frames += 1
        now = self._clock()
        key = can_id & CFP1_CONN_MASK
        partials = self._partials
        p = partials.get(key)
        if p is not None and now - p.last_used > self.timeout_s:
            del partials[key]
            self.dropped_timeout += 1
            p = None
        remain = (can_id >> CFP1_REMAIN_OFFSET) & 0xFF

        if not (can_id >> CFP1_TYPE_OFFSET) & 1:  # BEGIN
            if p is not None:
                # libcsp reuses the buffer and starts over; the packet in progress lost its tail.
                del partials[key]
                self.dropped_sequence += 1
            elif partials:
                self._sweep(now)  # libcsp cleans up stale buffers whenever it allocates a new one
            dlc = len(data)
            if dlc < CFP1_BEGIN_OVERHEAD:
                self.dropped_short += 1
                return None
            length = data[4] << 8 | data[5]
            if length > self.max_payload or dlc - CFP1_BEGIN_OVERHEAD > length:
                self.dropped_overflow += 1
                return None
            buf = bytearray(data[CFP1_BEGIN_OVERHEAD:])
            if len(buf) == length:
                return self._complete_v1(bytes(data[:4]), bytes(buf), timestamp)
            partials[key] = _Partial(bytes(data[:4]), length, remain, buf, now)
            return None

        if p is None:
            self.dropped_orphan += 1
            return None
        if remain != p.expect - 1:
            del partials[key]
            self.dropped_sequence += 1
            return None
        p.expect = remain
        buf = p.buf
        if len(buf) + len(data) > p.length:
            del partials[key]
            self.dropped_overflow += 1
            return None
        buf += data
        if len(buf) != p.length:
            p.last_used = now
            return None
        del partials[key]
        return self._complete_v1(p.header, bytes(buf), timestamp)

    def _complete_v1(self, raw_header: bytes, payload: bytes, timestamp: float | None) -> CspPacket | None:
        header = CspHeader.unpack_v1(raw_header)
        if header.dst == BROADCAST_V1 and self.local_address is not None:
            header = CspHeader(header.prio, header.src, self.local_address, header.dport, header.sport, header.flags)
        return self._deliver(header, payload, timestamp)

    def _push_v2(self, can_id: int, data: bytes | bytearray, timestamp: float | None = None, /) -> CspPacket | None:
        self.frames += 1
        now = self._clock()
        key = can_id & CFP2_CONN_MASK
        partials = self._partials
        p = partials.get(key)
        if p is not None and now - p.last_used > self.timeout_s:
            del partials[key]
            self.dropped_timeout += 1
            p = None

        if can_id & CFP2_BEGIN:
            if p is not None:
                del partials[key]
                self.dropped_sequence += 1
            elif partials:
                self._sweep(now)
            if len(data) < CFP2_EXT_HEADER_SIZE:
                self.dropped_short += 1
                return None
            # Bits 28..13 of the CAN ID are the first two bytes of the 48-bit CSP v2 header.
            raw_header = ((can_id >> CFP2_DST_OFFSET) & 0xFFFF).to_bytes(2, "big") + data[:CFP2_EXT_HEADER_SIZE]
            buf = bytearray(data[CFP2_EXT_HEADER_SIZE:])
            if len(buf) > self.max_payload:
                self.dropped_overflow += 1
                return None
            if can_id & CFP2_END:
                return self._complete_v2(raw_header, bytes(buf), timestamp)
            partials[key] = _Partial(raw_header, 0, 1, buf, now)
            return None

        if p is None:
            self.dropped_orphan += 1
            return None
        if (can_id >> CFP2_FC_OFFSET) & CFP2_FC_MASK != p.expect:
            del partials[key]
            self.dropped_sequence += 1
            return None
        p.expect = (p.expect + 1) & CFP2_FC_MASK
        buf = p.buf
        if len(buf) + len(data) > self.max_payload:
            del partials[key]
            self.dropped_overflow += 1
            return None
        buf += data
        if not can_id & CFP2_END:
            p.last_used = now
            return None
        del partials[key]
        return self._complete_v2(p.header, bytes(buf), timestamp)

    def _complete_v2(self, raw_header: bytes, payload: bytes, timestamp: float | None) -> CspPacket | None:
        header = CspHeader.unpack_v2(raw_header)
        if header.dst == BROADCAST_V2 and self.local_address is not None:
            header = CspHeader(header.prio, header.src, self.local_address, header.dport, header.sport, header.flags)
        return self._deliver(header, payload, timestamp)

    def _deliver(self, header: CspHeader, payload: bytes, timestamp: float | None) -> CspPacket | None:
        if self.check_crc and header.flags & FLAG_CRC32:
            if not crc32_matches(header, payload, self.version):
                self.crc_errors += 1
                return None
            payload = payload[:-4]
        self.packets += 1
        return CspPacket(header, payload, timestamp)
