"""numpy, loaded on first use: `from bench.dsp.lazy import np`.

Test plans import DSP functions at module level; importing numpy there would cost every `pytest
--collect-only` ~70 ms for arrays no collection needs. The standard library's lazy loader
(importlib.util.LazyLoader) gives a module object whose first attribute access runs the real import; if numpy
is already imported it is used as is. For type checkers this is plain numpy.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["lazy_module", "np"]


def lazy_module(name: str) -> ModuleType:
    """`name` as a module that is imported when first used (the recipe of the importlib documentation)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")
