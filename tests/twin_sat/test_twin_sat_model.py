"""The satellite model in-process (no sockets): ICD consistency of every node, the node life cycle."""

from __future__ import annotations

import pytest

from twin.icd import load_icd
from twin.nodes.satellite import NODE_CLASSES, Satellite
from twin.world import Options, World

ICD = load_icd()


def _satellite() -> tuple[World, Satellite]:
    world = World(Options())
    return world, Satellite(world, ICD)


def test_every_icd_node_has_a_simulation() -> None:
    assert set(ICD.nodes) == set(NODE_CLASSES)


@pytest.mark.parametrize("name", list(ICD.nodes))
def test_hk_values_name_exactly_the_icd_fields(name: str) -> None:
    _, sat = _satellite()
    node = sat.nodes[name]
    node.boot(0.0, "power_on")
    for structure in ICD.nodes[name].housekeeping:
        assert set(node.hk_values(structure.sid)) == {f.name for f in structure.fields}


def test_icd_is_self_consistent() -> None:
    for name, node in ICD.nodes.items():
        for kind in ("commands", "events", "parameters", "housekeeping"):
            items = getattr(node, kind)
            names = [i.name for i in items]
            assert len(names) == len(set(names)), f"{name}: duplicate {kind}"
        hk_names = {f.name for s in node.housekeeping for f in s.fields}
        other = {c.name for c in node.commands} | {e.name for e in node.events} | {p.name for p in node.parameters}
        assert not hk_names & other, f"{name}: mnemonics must be unique within a node"
        assert len({c.function_id for c in node.commands}) == len(node.commands)
        for parameter in node.parameters:
            assert parameter.field.in_range(parameter.default)
    assert len({n.address for n in ICD.nodes.values()} | {ICD.egse_address}) == len(ICD.nodes) + 1


def test_nodes_follow_the_power_model() -> None:
    world, sat = _satellite()
    sat.tick()
    assert not any(n.alive for n in sat.nodes.values())  # unpowered: silent
    world.dut.powered, world.dut.boot_count, world.dut.reset_cause = True, 1, "power_on"
    world.dut._power_good_at = world.clock() - 1.0  # booted a second ago
    sat.tick()
    assert all(n.alive and n.boot_count == 1 for n in sat.nodes.values())
    sat.nodes["OBC"]._enable_hk(1, 1.0)  # periodic HK on: a reset must turn it off again
    world.dut.powered = False  # brown-out
    sat.tick()
    assert not any(n.alive for n in sat.nodes.values())
    world.dut.powered, world.dut.boot_count, world.dut.reset_cause = True, 2, "brownout"
    sat.tick()
    obc = sat.nodes["OBC"]
    assert obc.alive and obc.boot_count == 2 and obc.reset_cause == "brownout" and obc.mode_name() == "SAFE"
    assert obc.hk_enabled == {}
