"""SMBus2I2C at its boundary: smbus2's SMBus is replaced by a fake bus; smbus2's real i2c_msg is used.

There is no kernel i2c-dev here, so these tests prove what the backend hands to smbus2 (messages, addresses,
order) and how it maps the kernel's errno to bench errors — the part that is ours.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import smbus2
from smbus2.smbus2 import I2C_M_RD

from instruments.i2c import I2CAdapterLost, I2CBus, I2CNack, I2CTimeout, P31uClient, SMBus2I2C, open_i2c


class FakeSMBus:
    """Records i2c_rdwr calls; devices answer reads; absent addresses fail like the kernel (ENXIO)."""

    instances: ClassVar[list[FakeSMBus]] = []

    def __init__(self, bus: int | str | None = None, force: bool = False) -> None:
        self.bus = bus
        self.force = force
        self.closed = False
        self.transfers: list[list[tuple[str, int, bytes]]] = []
        self.devices: dict[int, bytes] = {0x02: b"\x08\x00" + bytes(131), 0x48: b"\x17\x70"}
        self.fail_errno: int | None = None
        FakeSMBus.instances.append(self)

    def i2c_rdwr(self, *messages: smbus2.i2c_msg) -> None:
        record = []
        for msg in messages:
            is_read = bool(msg.flags & I2C_M_RD)
            record.append(("read" if is_read else "write", msg.addr, b"" if is_read else bytes(msg)))
        self.transfers.append(record)
        if self.fail_errno is not None:
            raise OSError(self.fail_errno, "fake")
        for msg in messages:
            if msg.addr not in self.devices:
                raise OSError(errno.ENXIO, "No such device or address")
            if msg.flags & I2C_M_RD:
                data = self.devices[msg.addr]
                for i in range(msg.len):
                    msg.buf[i] = data[i % len(data)]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeSMBus]]:
    FakeSMBus.instances = []
    monkeypatch.setattr(smbus2, "SMBus", FakeSMBus)
    yield FakeSMBus


def test_opens_the_bus_by_number_or_path(fake: type[FakeSMBus]) -> None:
    bus = open_i2c("smbus2", "1")
    assert isinstance(bus, SMBus2I2C) and isinstance(bus, I2CBus)
    assert fake.instances[-1].bus == 1 and bus.resource == "/dev/i2c-1"
    SMBus2I2C("/dev/i2c-7", force=True)
    second = fake.instances[-1]
    assert second.bus == "/dev/i2c-7"
    assert second.force
    bus.close()
    assert fake.instances[0].closed


def test_write_read_is_one_combined_transfer(fake: type[FakeSMBus]) -> None:
    bus = SMBus2I2C(1)
    reply = bus.write_read(0x48, b"\x00", 2)
    assert reply == b"\x17\x70"
    assert fake.instances[-1].transfers == [[("write", 0x48, b"\x00"), ("read", 0x48, b"")]]
    bus.write_register(0x48, 0x01, b"\x60")
    assert fake.instances[-1].transfers[-1] == [("write", 0x48, b"\x01\x60")]
    assert bus.read(0x48, 1) == b"\x17"


def test_p31u_client_over_smbus2(fake: type[FakeSMBus]) -> None:
    hk = P31uClient(SMBus2I2C(1)).get_housekeeping()
    assert hk.vbatt_mv == 0
    assert fake.instances[-1].transfers[-1][0] == ("write", 0x02, b"\x08\x00")


def test_scan_and_nack(fake: type[FakeSMBus]) -> None:
    bus = SMBus2I2C(1)
    assert bus.scan() == [0x02, 0x48]
    with pytest.raises(I2CNack, match="0x23") as error:
        bus.write(0x23, b"\x00")
    assert error.value.address == 0x23


@pytest.mark.parametrize(
    ("code", "error"),
    [(errno.EREMOTEIO, I2CNack), (errno.ETIMEDOUT, I2CTimeout), (errno.ENODEV, I2CAdapterLost)],
)
def test_errno_mapping(fake: type[FakeSMBus], code: int, error: type[Exception]) -> None:
    bus = SMBus2I2C(1)
    fake.instances[-1].fail_errno = code
    with pytest.raises(error, match="/dev/i2c-1"):
        bus.read(0x02, 3)


def test_missing_bus_is_adapter_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_device(bus: Any = None, force: bool = False) -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/dev/i2c-9")

    monkeypatch.setattr(smbus2, "SMBus", no_device)
    with pytest.raises(I2CAdapterLost, match="/dev/i2c-9"):
        SMBus2I2C(9)
