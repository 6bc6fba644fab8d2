"""Reading partner files (YAML/JSON) and document-event files (JSON, JSON array, JSON lines);
writing the registry's backup (``relay partners export``) in the form they are read."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from relay.core.errors import InvalidInput, InvalidJSON, InvalidPartner, UnknownCode
from relay.core.intake import describe_validation_error
from relay.core.matching.catalogue import check_coverage
from relay.core.models import Partner
from relay.core.models.limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_YAML_VALUES,
    read_json,
    too_deep_message,
)


def load_partners(path: Path) -> list[Partner]:
    """Every partner in a YAML or JSON file (a list, or ``{"partners": [...]}``)."""
    text = _read(path)
    try:
        data = read_yaml(text) if path.suffix.lower() in (".yaml", ".yml") else read_json(text)
    except (_Refused, InvalidJSON) as e:
        raise InvalidPartner(f"{path}: {e}") from e
    except yaml.YAMLError as e:
        raise InvalidPartner(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from e
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


#: The first lines of an exported YAML file.
EXPORT_HEADER = (
    "# Policy Relay partners, exported by `relay partners export`; `relay partners import`\n"
    "# takes this file back. It holds every channel's secrets: keep it like a password.\n"
    "# Partners' API tokens are held only as SHA-256 hashes (token_hashes), so a restore\n"
    "# keeps their tokens working and this file cannot reveal one.\n"
)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_partners(partners: list[Partner], *, as_json: bool) -> str:
    """The partners as a file :func:`load_partners` reads back into the same partners;
    :class:`InvalidInput` if it would not (too large, or too many values for YAML)."""
    data = [p.model_dump(mode="json") for p in partners]
    if as_json:
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    else:
        values = _count_values(data)
        if values > MAX_YAML_VALUES:
            raise InvalidInput(
                f"{len(partners):,} partners are {values:,} YAML values, over the "
                f"{MAX_YAML_VALUES:,} an import reads: export to a .json file"
            )
        text = EXPORT_HEADER + yaml.dump(
            data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False, width=100
        )
    size = len(text.encode())
    if size > MAX_FILE_BYTES:
        raise InvalidInput(
            f"the export is {size:,} bytes, over the {MAX_FILE_BYTES:,} an import reads"
        )
    return text


def _count_values(data: Any) -> int:
    if isinstance(data, dict):
        return 1 + sum(1 + _count_values(v) for v in data.values())
    if isinstance(data, list):
        return 1 + sum(_count_values(v) for v in data)
    return 1


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only (0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not a file") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot write ({e.strerror})") from None


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


class _Refused(yaml.YAMLError):
    """A YAML document over a limit (depth, or values once its aliases are expanded)."""


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader within the limits: nesting (its composer recurses once per
    level, so a deep document would exhaust the stack) and the size of the document with
    its aliases expanded (a "billion laughs" is a few lines that expand to 10⁹ values)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        nested = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                raise _Refused(f"{too_deep_message()} (line {line})")
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_expanded(node)
        return node


def _check_expanded(root: yaml.Node) -> None:
    """Refuse a composed document that, with its aliases expanded, holds more than
    MAX_YAML_VALUES values, nests deeper than MAX_DEPTH, or contains itself.

    Each node is visited once (memoised), without recursion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        kids: list[yaml.Node] = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
            if isinstance(node, yaml.SequenceNode)
            else []
        )
        if children_done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            nested = 1 if isinstance(node, yaml.CollectionNode) else 0
            depth[key] = nested + max((depth[id(k)] for k in kids), default=0)
            line = node.start_mark.line + 1
            if size[key] > MAX_YAML_VALUES:
                raise _Refused(
                    f"holds more than {MAX_YAML_VALUES:,} values once its aliases are "
                    f"expanded (line {line})"
                )
            if depth[key] > MAX_DEPTH:
                raise _Refused(f"{too_deep_message()} once its aliases are expanded (line {line})")
            continue
        if key in size:
            continue
        if key in open_:
            raise _Refused(
                f"an alias refers to a collection it is inside (line {node.start_mark.line + 1})"
            )
        open_.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids)


def read_yaml(text: str) -> Any:
    """One YAML document, read safely and within the limits."""
    return yaml.load(text, Loader=_LimitedLoader)  # a SafeLoader: plain data only


@dataclass(frozen=True)
class RawEvent:
    """One event as read from a file: its position and decoded JSON (or the parse error)."""

    position: str
    data: Any
    error: str | None = None
    #: Why it could not be read: ``not_json`` or ``too_deep``.
    reason: str = "not_json"


def read_events(path: Path | None, text: str | None = None) -> list[RawEvent]:
    """Events from a JSON object, a JSON array, or JSON lines (``path=None`` reads ``text``)."""
    if text is None:
        assert path is not None
        text = _read(path)
    stripped = text.strip()
    if not stripped:
        raise InvalidInput(f"{path or 'stdin'}: no events (the input is empty)")
    try:
        data = read_json(stripped)
    except InvalidJSON:
        pass  # JSON lines, then: each line on its own
    else:
        if isinstance(data, list):
            return [RawEvent(f"[{i}]", item) for i, item in enumerate(data)]
        return [RawEvent("[0]", data)]
    events = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(RawEvent(f"line {n}", read_json(line)))
        except InvalidJSON as e:
            events.append(RawEvent(f"line {n}", None, e.message, e.reason))
    return events


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InvalidInput(
                f"{path}: larger than {MAX_FILE_BYTES:,} bytes, the most a file may have"
            )
        return data.decode("utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read ({e.strerror})") from None
