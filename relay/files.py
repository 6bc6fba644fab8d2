"""Reading partner files (YAML/JSON) and document-event files (JSON, JSON array, JSON lines)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from relay.errors import InvalidInput, InvalidPartner, UnknownCode
from relay.intake import describe_validation_error
from relay.matching.catalogue import check_coverage
from relay.models import Partner


def load_partners(path: Path) -> list[Partner]:
    """Every partner in a YAML or JSON file (a list, or ``{"partners": [...]}``)."""
    text = _read(path)
    try:
        data = (
            yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
        )
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise InvalidPartner(
            f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: "
            f"{str(e).splitlines()[0]}"
        ) from e
    if isinstance(data, dict) and "partners" in data:
        data = data["partners"]
    if not isinstance(data, list):
        raise InvalidPartner(f"{path}: expected a list of partners")
    partners: list[Partner] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        partners.append(parse_partner(item, where=f"{path}: partners[{i}]"))
        if partners[-1].id in seen:
            raise InvalidPartner(f"{path}: partners[{i}]: id {partners[-1].id!r} appears twice")
        seen.add(partners[-1].id)
    return partners


def parse_partner(item: Any, *, where: str = "partner") -> Partner:
    """Validate one partner, naming where it came from, its id and the bad field."""
    label = where
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        label = f"{where} ({item['id']})"
    try:
        partner = Partner.model_validate(item)
    except ValidationError as e:
        _, sentence = describe_validation_error(e)
        raise InvalidPartner(f"{label}: {sentence}") from e
    try:
        check_coverage(partner.coverage, at="coverage")
    except UnknownCode as e:
        raise InvalidPartner(f"{label}: {e}") from e
    return partner


@dataclass(frozen=True)
class RawEvent:
    """One event as read from a file: its position and decoded JSON (or the parse error)."""

    position: str
    data: Any
    error: str | None = None


def read_events(path: Path | None, text: str | None = None) -> list[RawEvent]:
    """Events from a JSON object, a JSON array, or JSON lines (``path=None`` reads ``text``)."""
    if text is None:
        assert path is not None
        text = _read(path)
    stripped = text.strip()
    if not stripped:
        raise InvalidInput(f"{path or 'stdin'}: no events (the input is empty)")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        data = None
    else:
        if isinstance(data, list):
            return [RawEvent(f"[{i}]", item) for i, item in enumerate(data)]
        return [RawEvent("[0]", data)]
    events = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(RawEvent(f"line {n}", json.loads(line)))
        except json.JSONDecodeError as e:
            events.append(RawEvent(f"line {n}", None, f"not JSON: {e.msg} at column {e.colno}"))
    return events


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read ({e.strerror})") from None
