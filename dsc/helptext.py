"""Help texts of dsc's command lines: each option's default shown, docstrings without reST markup."""

from __future__ import annotations

import argparse
import re

_ROLE = re.compile(r":[a-z]+:`~?(?:[^`<]*<)?([^`>]+)>?`")  # :class:`~dsc.x.Y` -> dsc.x.Y (the ~ form: Y)
_LITERAL = re.compile(r"``(.+?)``")


def plain(text: str) -> str:
    """``text`` without reST markup: roles (:mod:`x`, :class:`~a.B` -> B) and literals (``x``)."""
    def role(match: re.Match) -> str:
        target = match[1]
        return target.rsplit(".", 1)[-1] if match[0].split("`", 1)[1].startswith("~") else target

    return _LITERAL.sub(r"\1", _ROLE.sub(role, text))


def first_paragraph(doc: str | None) -> str:
    """A module docstring's first paragraph as one plain line (a parser's description)."""
    first = (doc or "").strip().split("\n\n", 1)[0]
    return plain(" ".join(first.split())).rstrip(":")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help (not where the default is None or a switch's, or the
    help already says it); text wrapped by paragraph, an indented paragraph (examples) kept as
    written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action.default, bool) or "(default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n\n".join(part if "\n  " in part else fill(part, width, indent) for part in text.split("\n\n"))
