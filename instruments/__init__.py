"""Drivers for the bench's real instruments — the only code that talks to hardware.

The layer sits between the bench domain (`bench/`) and the wires (pyvisa, python-can, pyserial). It
exposes each kind of instrument as a `typing.Protocol` (`instruments.power.PowerSupply`, ...) with typed,
immutable values; a driver per model implements it, and `instruments.registry` maps the `driver:` name of
the bench config to the class. The twin serves the same protocols on loopback, so these drivers cannot
tell it from the real instruments.

    scpi.ScpiInstrument   SCPI transport: one lock per exchange, SYST:ERR? after each write, error mapping
    errors                InstrumentError and its subclasses: resource + command + what to check
    power                 PowerSupply protocol and its values (ChannelRating, ProtectionState, Trace, ...)
    psu_base              shared by SCPI supplies: refusal before sending, safe state
    psu_keysight          Keysight E36312A     psu_rigol   Rigol DP832
    registry              POWER_SUPPLIES table and open_power_supply()

Drivers refuse what the instrument cannot do before sending it (`SettingOutOfRange`, `NotSupported`),
log every exchange at DEBUG (logger `instruments.scpi`), and never import pytest or the upper layers.
"""
