"""The bench's CAN adapter: a python-can bus opened from the bench config, with errors a person can act on.

Ways to reach a CAN bus; the first two are served by the twin, all are real lab set-ups:

* ``socketcand`` — a socketcand daemon on a Linux gateway that owns the physical adapter (e.g. a PEAK
  PCAN-USB as ``can0``); ``resource`` is ``host:port`` and ``channel`` the gateway's interface name;
* ``slcan`` — a Lawicel/slcan USB dongle; ``resource`` is anything pyserial opens: a device path
  (``/dev/ttyACM0``), ``socket://host:port`` (the twin, a ser2net bridge), ``rfc2217://…``;
* any other python-can interface by its python-can name — ``socketcan`` on ``can0`` (the usual Linux bench
  PC with a PEAK or Kvaser adapter), ``pcan``, ``kvaser``, ``gs_usb``, ``vector``, ``virtual`` — opened as
  ``can.Bus(interface=<driver>, channel=<channel>, bitrate=<bitrate>, **options)``, the options passed through
  from the bench config unchanged.

Only extended data frames carry CSP; the adapter hands every received message on (error frames included)
and leaves their meaning to the bench. It knows nothing of CSP, PUS or pytest.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import can

from instruments.errors import ConnectionLost, InstrumentUnreachable

__all__ = ["CanAdapter", "CanAddress", "open_can_adapter"]
DEFAULT_SOCKETCAND_PORT = 29536

MessageListener = Callable[[can.Message], None]

# python-can's socketcand client logs a WARNING on every partial TCP read ("Got incomplete message"):
# harmless, but a saturated bus would drown the test log in it.
logging.getLogger("can.interfaces.socketcand.socketcand").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class CanAddress:
    """Where a CAN bus is: the driver and its resource (``host:port`` or a pyserial URL), the channel."""

    driver: str  # socketcand, slcan, or a python-can interface name
    resource: str
    channel: str = "can0"
    bitrate: int = 1_000_000
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to python-can's Bus unchanged

    def __str__(self) -> str:
        if self.driver == "socketcand":
            return f"socketcand://{self.resource}/{self.channel}"
        if self.driver == "slcan":
            return f"slcan:{self.resource}"
        return f"{self.driver}:{self.channel}"

    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.resource.rpartition(":")
        if not sep:
            return self.resource, DEFAULT_SOCKETCAND_PORT
        try:
            return host.strip("[]"), int(port)
        except ValueError:
            raise InstrumentUnreachable(
                resource=str(self), reason=f"'{self.resource}' is not host:port for socketcand"
            ) from None


class CanAdapter:
    """One open CAN bus. ``send`` is thread-safe; ``recv`` is meant for one reader thread."""

    def __init__(self, bus: can.BusABC, address: CanAddress | None = None, description: str = "") -> None:
        self.bus = bus
        self.address = address
        self.description = description or (str(address) if address else str(bus.channel_info))
        self._tx_lock = threading.Lock()
        self._closed = False

    def send(self, can_id: int, data: bytes, *, extended: bool = True) -> can.Message:
        """Put one data frame on the bus; returns the message as sent (for logs)."""
        msg = can.Message(arbitration_id=can_id, data=data, is_extended_id=extended, is_rx=False)
        try:
            with self._tx_lock:
                self.bus.send(msg)
        except can.CanError as exc:
            raise ConnectionLost(resource=self.description, command="send", reason=str(exc)) from exc
        except OSError as exc:
            raise ConnectionLost(resource=self.description, command="send", reason=exc.strerror or str(exc)) from exc
        return msg

    def recv(self, timeout_s: float) -> can.Message | None:
        """The next received message, or None after ``timeout_s``. A broken link raises ConnectionLost."""
        try:
            return self.bus.recv(timeout=timeout_s)
        except can.CanError as exc:
            raise ConnectionLost(resource=self.description, command="recv", reason=str(exc)) from exc
        except (OSError, ValueError) as exc:  # the socket went away under python-can
            raise ConnectionLost(resource=self.description, command="recv", reason=str(exc)) from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.bus.shutdown()
            except (can.CanError, OSError) as exc:  # closing a dead link: nothing left to protect
                logging.getLogger(__name__).debug("closing %s: %s", self.description, exc)

    def __enter__(self) -> CanAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _probe_tcp(address: CanAddress, host: str, port: int, timeout_s: float, hint: str) -> None:
    # python-can's socketcand client retries a refused connection for 10 s before failing, and pyserial's
    # socket:// gives a bare OSError; probing first turns "nothing listens there" into a clear error at once.
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise InstrumentUnreachable(
            resource=str(address), reason=f"TCP {host}:{port}: {exc.strerror or exc} — {hint}"
        ) from None


def open_can_adapter(address: CanAddress, *, timeout_s: float = 3.0) -> CanAdapter:
    """Open the bus at ``address``; raises InstrumentUnreachable with the reason when it cannot."""
    if address.driver == "socketcand":
        host, port = address.host_port()
        _probe_tcp(address, host, port, timeout_s, "is socketcand running?")
        try:
            # tcp_tune: TCP_NODELAY + QUICKACK; without them Nagle and delayed ACKs add ~40 ms to every exchange.
            bus = can.Bus(interface="socketcand", channel=address.channel, host=host, port=port, tcp_tune=True)
        except (can.CanError, OSError, TimeoutError, ValueError) as exc:
            raise InstrumentUnreachable(resource=str(address), reason=f"socketcand handshake failed: {exc}") from None
        return CanAdapter(bus, address)
    if address.driver == "slcan":
        if address.resource.startswith("socket://"):
            bridge = CanAddress("slcan", address.resource.removeprefix("socket://"))
            host, port = bridge.host_port()
            _probe_tcp(address, host, port, timeout_s, "is the serial-over-TCP bridge running?")
        try:
            # sleep_after_open=0: a 2 s wait is for dongles that reset on open; a bridge or the twin does not.
            bus = can.Bus(
                interface="slcan", channel=address.resource, bitrate=address.bitrate, sleep_after_open=0, timeout=0.01
            )
        except (can.CanError, OSError, ValueError) as exc:
            raise InstrumentUnreachable(resource=str(address), reason=f"cannot open the slcan port: {exc}") from None
        adapter = CanAdapter(bus, address)
        try:
            # The adapter never acknowledges the init commands; a version query proves it is an slcan device
            # that listens, and sync's its replies with ours before any frame flows.
            hw, sw = bus.get_version(timeout_s)  # type: ignore[attr-defined]
        except (can.CanError, OSError) as exc:
            adapter.close()
            raise InstrumentUnreachable(resource=str(address), reason=f"no reply to the version query: {exc}") from None
        if hw is None:
            adapter.close()
            raise InstrumentUnreachable(
                resource=str(address), reason=f"no reply to the slcan version query (V) within {timeout_s:g} s"
            )
        adapter.description = f"{address} (slcan hw {hw} sw {sw})"
        return adapter
    try:
        bus = can.Bus(interface=address.driver, channel=address.channel, bitrate=address.bitrate, **address.options)
    except (can.CanError, OSError, ImportError, NotImplementedError, TypeError, ValueError) as exc:
        raise InstrumentUnreachable(resource=str(address), reason=f"python-can could not open it: {exc}") from None
    return CanAdapter(bus, address, f"{address} ({type(bus).__name__}, python-can {can.__version__})")
