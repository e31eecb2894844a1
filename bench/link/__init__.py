"""The satellite link as the bench sees it: CSP over CAN (CFP v1/v2), the CSP service ports, PUS-C.

Pure logic — no I/O, no CAN library. Frames are ``(can_id, data)`` pairs or :class:`CanFrame` values;
the transport that moves them (python-can, socketcand, a log file) lives in ``instruments/``.

* :mod:`bench.link.crc32c` — CRC-32C, the checksum CSP calls CRC32;
* :mod:`bench.link.csp` — CSP v1/v2 headers, packets, CRC32 trailer;
* :mod:`bench.link.cfp` — CAN fragmentation and reassembly with libcsp's drop rules and counters;
* :mod:`bench.link.services` — payloads of the reserved ports (CMP, ping, ps, memfree, reboot, …);
* :mod:`bench.link.pus` — PUS-C TCs and TM decoding over spacepackets;
* :mod:`bench.link.pipeline` — the receive chain frames → packets → telemetry.
"""

from bench.link.cfp import CanFrame, CfpEncoder, Reassembler, ReassemblyCounters, fragment_v1, fragment_v2
from bench.link.crc32c import crc32c
from bench.link.csp import CspError, CspHeader, CspPacket, CspVersion, append_crc32, verify_crc32
from bench.link.pipeline import LinkCounters, LinkDecoder, LinkMessage
from bench.link.pus import PusError, TcPacket, TmPacket, decode_report, decode_tm

__all__ = [
    "CanFrame",
    "CfpEncoder",
    "CspError",
    "CspHeader",
    "CspPacket",
    "CspVersion",
    "LinkCounters",
    "LinkDecoder",
    "LinkMessage",
    "PusError",
    "Reassembler",
    "ReassemblyCounters",
    "TcPacket",
    "TmPacket",
    "append_crc32",
    "crc32c",
    "decode_report",
    "decode_tm",
    "fragment_v1",
    "fragment_v2",
    "verify_crc32",
]
