"""pyvisa shares one ResourceManager per library: someone else closing it must not break the drivers."""

import pyvisa

from instruments.scpi import resource_manager


def test_resource_manager_survives_a_foreign_close():
    ours = resource_manager()
    pyvisa.ResourceManager("@py").close()  # e.g. a script or test that used bare pyvisa and tidied up
    again = resource_manager()
    assert again.session is not None  # usable: would raise InvalidSession if the closed one came back
    assert ours is not again or ours.session is not None
