"""Plot data: what the domain hands over to be drawn — series of x/y values, a name, and a kind.

The bench measures; it does not draw. A step that wants a plot in the report (an RF spectrum with its mask,
FER against input level) builds :class:`PlotSeries` and gives them to ``evidence.plot(...)``, which stores
them as a JSON attachment (``application/vnd.ots.plot+json``, schema ``ots.plot/1``); the report
(:mod:`reports.svgplot`) reads that attachment and draws it. Nothing here knows SVG, HTML or colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["PLOT_STYLES", "PlotSeries", "PlotStyle"]

PlotStyle = Literal["line", "markers", "limit"]
"""``line``: a measured curve; ``markers``: points (e.g. the sensitivity point); ``limit``: a limit line (e.g. a
spectral mask; a limit of a single point is a horizontal line across the whole plot, e.g. FER = 1e-2)."""
PLOT_STYLES: Final[tuple[PlotStyle, ...]] = ("line", "markers", "limit")


@dataclass(frozen=True)
class PlotSeries:
    """One series of an XY plot: its name, its x and y values (stored as tuples of floats; NaN breaks a line)
    and its kind (:data:`PlotStyle`)."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    style: PlotStyle = "line"

    def __post_init__(self) -> None:
        if self.style not in PLOT_STYLES:
            raise ValueError(f"series {self.name!r}: style must be one of {PLOT_STYLES}, got {self.style!r}")
        x = tuple(float(v) for v in self.x)
        y = tuple(float(v) for v in self.y)
        if len(x) != len(y):
            raise ValueError(f"series {self.name!r}: x has {len(x)} values, y has {len(y)}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
