"""Campaign presets: real campaigns shipped as data, loaded into :class:`~jianyi_flow.domain.campaign.Campaign`.

A preset is a JSON file in this package (the format :meth:`Campaign.from_dict` reads), so
the text of a notice lives in one reviewable place and is checked for consistency every
time it is loaded.  ``yongchuan-2024`` is the Yongchuan district's 2024 campaign
「开启新篇章 重庆向未来」 (see docs/campaign.md for its areas, topics, phases and units,
and :attr:`Campaign.notes` for where the notice contradicts itself).

The unit list is configuration: rows with ``editable`` set are typical district
departments, not an official list.  To use a different list, load the preset and replace
it (``attrs.evolve(yongchuan_2024(), units=..., routing=...)`` re-checks the campaign; the
routing names departments, so it goes with the list), or copy the
JSON, edit it, and load it with :func:`load_file`.  A campaign file may also be TOML (same
keys; docs/campaign.md); :func:`load` takes a preset name or a file path, as the command
line's ``--preset`` does.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from ..domain.campaign import Campaign
from ..errors import ValidationError

__all__ = ["get", "load", "load_file", "names", "yongchuan_2024"]


def _load_json(text: str, origin: str) -> Campaign:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(origin, f"is not valid JSON: {exc}", code="not_json",
                              details={"line": exc.lineno, "column": exc.colno}) from None
    return Campaign.from_dict(data)


def _load_toml(text: str, origin: str) -> Campaign:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(origin, f"is not valid TOML: {exc}", code="wrong_type") from None
    return Campaign.from_dict(_as_json_data(data))


def _as_json_data(value: Any) -> Any:
    """TOML's dates and times as the ISO texts the JSON format uses (``2025-03-01``, ``09:00``)."""
    if isinstance(value, dict):
        return {k: _as_json_data(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_as_json_data(x) for x in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()  # a date field then refuses it: a phase is a day, not an instant
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="minutes" if not value.second else "seconds")
    return value


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
        raise ValidationError("name", f"unknown preset {name!r}; known presets: {', '.join(names())}",
                              code="unknown_code", details={"value": str(name), "allowed": list(names())}) from None
    return factory()


def load_file(path: str | Path) -> Campaign:
    """A campaign from a file in the preset format: JSON, or TOML when the name ends in ``.toml``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError("path", f"cannot read {p}: {exc.strerror or exc}", code="unreadable") from None
    if p.suffix.lower() == ".toml":
        return _load_toml(text, str(p))
    return _load_json(text, str(p))


def load(name_or_path: str | Path) -> Campaign:
    """The preset of that name, else the campaign file at that path (``.json`` or ``.toml``)."""
    if isinstance(name_or_path, str) and name_or_path in _REGISTRY:
        return get(name_or_path)
    p = Path(name_or_path)
    if p.suffix.lower() in (".json", ".toml") or p.exists():
        return load_file(p)
    raise ValidationError("preset", f"unknown preset {str(name_or_path)!r} and no such campaign file; known presets: "
                                    f"{', '.join(names())}, or give a path to a .json or .toml campaign file",
                          code="unknown_code", details={"value": str(name_or_path), "allowed": list(names())})
