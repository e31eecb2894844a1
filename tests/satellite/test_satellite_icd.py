"""The ICD loader: the shipped ICD loads; a bad entry fails at load in one line; lookups and codecs."""

import struct

import pytest

from bench.icd import PACKAGE_ICD, CommandRefused, IcdError, UnknownMnemonic, load_icd

GOOD = PACKAGE_ICD.read_text()


def _load(tmp_path, text):
    path = tmp_path / "icd.yaml"
    path.write_text(text)
    with pytest.raises(IcdError) as info:
        load_icd(path)
    return str(info.value), path


def test_shipped_icd_loads(icd):
    assert icd.node("EPS").address == 2 and icd.node("eps").apid == 0x066
    assert icd.tm_point("EPS.VBAT").field.units == "V"
    assert icd.command("ADCS.SET_MODE").definition.function_id == 1
    assert icd.event("EPS.LATCHUP").severity == "medium"


def test_unknown_type_names_file_and_path(tmp_path):
    text = GOOD.replace("{name: VBUS, type: u16", "{name: VBUS, type: u17", 1)
    msg, path = _load(tmp_path, text)
    assert msg.startswith(f"{path}: housekeeping.EPS[0].fields[2].type: unknown type 'u17'")
    assert "\n" not in msg


def test_unknown_node_in_a_section(tmp_path):
    msg, _ = _load(tmp_path, GOOD.replace("\ncommands:\n  OBC:", "\ncommands:\n  OBX:", 1))
    assert "commands.OBX: unknown node" in msg


def test_typo_field_rejected(tmp_path):
    msg, _ = _load(tmp_path, GOOD.replace("period_s: 1.0", "perod_s: 1.0", 1))
    assert "housekeeping.OBC[0].perod_s: unknown field" in msg


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ("{IMAGE: 3}", "nodes.PAYLOAD.ports: IMAGE: port 3 is not an application port (7..31; 0..6 are libcsp's)"),
        ("{IMAGE: 10}", "nodes.PAYLOAD.ports.IMAGE: 10 is the PUS port (pus_port)"),
        ("{IMAGE: 20, THUMB: 20}", "nodes.PAYLOAD.ports: two services on one port"),
    ],
)
def test_application_ports_are_checked(tmp_path, ports, expected):
    assert "ports: {IMAGE: 20}" in GOOD
    msg, _ = _load(tmp_path, GOOD.replace("ports: {IMAGE: 20}", f"ports: {ports}", 1))
    assert expected in msg and "\n" not in msg, msg


def test_unknown_mnemonic_lists_near_matches(icd):
    with pytest.raises(UnknownMnemonic) as info:
        icd.tm_point("EPS.VBATT")
    assert "EPS.VBAT" in str(info.value) and "did you mean" in str(info.value)
    with pytest.raises(UnknownMnemonic, match=r"ADCS\.SET_WHEEL_SPEED"):
        icd.command("ADCS.SET_WHEEL_SPED")


def test_encode_args_checks_range_enum_and_names(icd):
    cmd = icd.command("ADCS.SET_WHEEL_SPEED")
    assert cmd.encode_args({"axis": "Y", "rpm": -3000}) == struct.pack(">Bh", 1, -3000)
    with pytest.raises(CommandRefused, match="rpm: 9000 is above the maximum 6000"):
        cmd.encode_args({"axis": "X", "rpm": 9000})
    assert cmd.encode_args({"axis": "X", "rpm": 9000}, check=False) == struct.pack(">Bh", 0, 9000)
    with pytest.raises(CommandRefused, match="does not fit in i16"):
        cmd.encode_args({"axis": "X", "rpm": 90000}, check=False)
    with pytest.raises(CommandRefused, match="not one of X, Y, Z"):
        cmd.encode_args({"axis": "W", "rpm": 0})
    with pytest.raises(CommandRefused, match="missing rpm; unknown speed"):
        cmd.encode_args({"axis": "X", "speed": 1})


def test_decode_hk_scales_to_engineering(icd):
    hk = icd.hk_structure("EPS", 1)
    raw = [0] * len(hk.structure.fields)
    raw[0] = 3800  # VBAT mV
    raw[1] = -120  # IBAT mA
    values = icd.decode_hk("EPS", 1, struct.pack(hk.structure.format, *raw))
    assert values["EPS.VBAT"] == pytest.approx(3.8)
    assert values["EPS.IBAT"] == pytest.approx(-0.12)
    assert values["EPS.OUT_OBC"] is False


def test_decode_event_and_unknown_event(icd):
    ev = icd.decode_event("EPS", 0x0201, "medium", b"\x03")
    assert ev.mnemonic == "EPS.LATCHUP" and ev.data == {"channel": 3}
    assert icd.decode_event("EPS", 0x0299, "low", b"").mnemonic == "EPS.EVENT_0x0299"


def test_parameters_roundtrip(icd):
    node, pid, raw = icd.encode_parameter("ADCS.DETUMBLE_GAIN", 2.5)
    assert (node, pid) == ("ADCS", 0x0301)
    assert icd.decode_parameters("ADCS", [(pid, raw)]) == {"ADCS.DETUMBLE_GAIN": 2.5}
    with pytest.raises(CommandRefused):
        icd.encode_parameter("ADCS.DETUMBLE_GAIN", 11)
