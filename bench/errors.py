"""Errors of the bench layer that must be importable without pulling in heavy dependencies."""


class ConfigError(ValueError):
    """A bench config, limits file or campaign file is wrong; the message says where and how to fix it."""
