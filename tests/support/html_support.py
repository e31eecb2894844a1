"""Reading report.html in tests: one section, and the visible text of a fragment."""

from __future__ import annotations

import re
from html.parser import HTMLParser


def section(html: str, section_id: str) -> str:
    """The ``<section … id="section_id">`` element (fails the test if there is none)."""
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def visible_text(fragment: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed, entities decoded."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    p = Text()
    p.feed(fragment)
    return " ".join(" ".join(p.parts).split())
