"""Errors of the bench layer that must be importable without pulling in heavy dependencies."""


class ConfigError(ValueError):
    """A bench config, limits file or campaign file is wrong; the message says where and how to fix it."""


class EnvelopeViolation(ValueError):
    """A setting outside the DUT envelope was refused before anything was sent (bench.envelope, bench.rf)."""
