"""Campaign presets: real campaigns shipped as data, loaded into :class:`~jianyi_flow.domain.campaign.Campaign`.

A preset is a JSON file in this package (the format :meth:`Campaign.from_dict` reads), so
the text of a notice lives in one reviewable place and is checked for consistency every
time it is loaded.  ``yongchuan-2024`` is the Yongchuan district's 2024 campaign
「开启新篇章 重庆向未来」 (see docs/campaign.md for its areas, topics, phases and units,
and :attr:`Campaign.notes` for where the notice contradicts itself).

The unit list is configuration: rows with ``editable`` set are typical district
departments, not an official list.  To use a different list, load the preset and replace
it (``attrs.evolve(yongchuan_2024(), units=...)`` re-checks the campaign), or copy the
JSON, edit it, and load it with :func:`load_file`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ..domain.campaign import Campaign
from ..errors import ValidationError

__all__ = ["get", "load_file", "names", "yongchuan_2024"]


def _load_json(text: str, origin: str) -> Campaign:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(origin, f"is not valid JSON: {exc}") from None
    return Campaign.from_dict(data)


def _packaged(filename: str) -> Campaign:
    text = resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")
    return _load_json(text, filename)


@functools.cache
def yongchuan_2024() -> Campaign:
    """The Yongchuan district 2024 campaign (code ``YC2024``), from the notice of 2024-08-08.

    Loaded once and shared: a :class:`Campaign` is immutable.
    """
    return _packaged("yongchuan_2024.json")


_REGISTRY: dict[str, Callable[[], Campaign]] = {
    "yongchuan-2024": yongchuan_2024,
}


def names() -> tuple[str, ...]:
    """The names :func:`get` knows, sorted."""
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Campaign:
    """The preset called ``name``; :class:`~jianyi_flow.errors.ValidationError` lists the known names."""
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValidationError("name", f"unknown preset {name!r}; known presets: {', '.join(names())}") from None
    return factory()


def load_file(path: str | Path) -> Campaign:
    """A campaign from a JSON file in the preset format (e.g. an edited copy of a preset)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError("path", f"cannot read {p}: {exc.strerror or exc}") from None
    return _load_json(text, str(p))
