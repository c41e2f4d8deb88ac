"""Channel configuration in YAML: source, acceptance, filters, mapping, destinations, retry.

A channel file looks like this (every key but ``name`` is optional)::

    name: lab-feed
    journal: cmio-data/hl7/journal.db     # durable journal (SQLite, WAL, synchronous=FULL)
    source:
      type: mllp                          # or: folder
      host: 127.0.0.1
      port: 2575
      max_message_bytes: 1048576          # larger frames get AR and are skipped
      idle_timeout: 300                   # seconds without data: close
      frame_timeout: 30                   # seconds to finish a started frame: close
      max_connections: 256                # more at once are closed on arrival
      # folder sources: path: inbox/, pattern: "*.hl7", poll_seconds: 1, done: inbox/done
    accept:
      message_types: [ORU^R01, ADT^A01]   # empty: every type the mapping handles
      versions: ["2.3", "2.5.1"]          # empty: 2.3 to 2.8.2
      processing_ids: [P]                 # others get AR (table 0103)
    filters:                              # all must hold; filtered messages are ACKed, not mapped
      - field: MSH-4
        in: [LAB, RAD]
      - field: PID-3.4
        matches: "^RBH"
      - field: MSH-11
        not_in: [T]
    mapping: {}                           # options passed to the v2-to-FHIR mapping
    destinations:
      - type: store                       # the FHIR store (transaction Bundle)
      - type: folder
        path: out/fhir
      - type: mllp                        # forward the original message
        host: 10.0.0.5
        port: 2575
    retry:
      max_attempts: 5
      initial_delay: 0.5
      max_delay: 30
      multiplier: 2
    return_destination:                   # enhanced mode: where application ACKs go
      host: 10.0.0.7                      # (sent when MSH-16 asks; MSH-15 governs the
      port: 2576                          #  commit ACK on the connection)
    retention:
      days: 30                            # processed journal rows kept this long
      duplicate_window_days: 30           # MSH-10 duplicates detected this long (>= days)
      prune_every: 3600                   # seconds between background prunes (0: never)

Errors name the key that is wrong (``lab.yaml: retry.max_attempts: must be >= 1``).
Transport details: https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55 .
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from cmio.interfaces.hl7v2.engine.channeltypes import (
    DEFAULT_JOURNAL,
    AcceptPolicy,
    ChannelConfig,
    ChannelError,
    Destination,
    FieldFilter,
    Retention,
    RetryPolicy,
    Source,
)
from cmio.interfaces.hl7v2.parser import SUPPORTED_VERSIONS

__all__ = [
    "DEFAULT_JOURNAL",
    "SUPPORTED_VERSIONS",
    "AcceptPolicy",
    "ChannelConfig",
    "ChannelError",
    "Destination",
    "FieldFilter",
    "Retention",
    "RetryPolicy",
    "Source",
    "load_channel",
    "load_channels",
    "parse_channel",
]

_FIELD_RE = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def load_channel(path: Path) -> ChannelConfig:
    """The checked channel of a YAML channel file (format: this module's docstring).

    Raises:
        ChannelError: the file cannot be read or parsed, or a key is wrong (named).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ChannelError(f"{path}: {exc}") from exc
    return parse_channel(data, str(path))


def load_channels(spec: str) -> list[ChannelConfig]:
    """The checked channels of ``spec``, each read like :func:`load_channel`.

    Args:
        spec: a folder (its ``*.yaml``/``*.yml`` files, sorted) or files separated by
            the OS path separator.

    Raises:
        ChannelError: a path does not exist, or a channel file is wrong.
    """
    paths: list[Path] = []
    for part in filter(None, spec.split(os.pathsep)):
        path = Path(part)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            paths.append(path)
        else:
            raise ChannelError(f"{path}: no such channel file or folder")
    return [load_channel(p) for p in paths]


def parse_channel(data: Any, where: str = "channel") -> ChannelConfig:
    """The checked channel of a parsed YAML document.

    Args:
        data: the parsed YAML document.
        where: what to name in errors (the file).

    Raises:
        ChannelError: a key is missing, unknown or wrong; the message names it.
    """
    top = _mapping(data, where, "")
    _known(
        top,
        where,
        "",
        {"name", "journal", "source", "accept", "filters", "mapping", "destinations", "retry",
         "return_destination", "retention"},
    )  # fmt: skip
    name = top.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
        raise ChannelError(f"{where}: name: a channel name of letters, digits, '_.-' is required")
    journal = top.get("journal", DEFAULT_JOURNAL)
    if not isinstance(journal, str):
        raise ChannelError(f"{where}: journal: must be a path")
    mapping = top.get("mapping") or {}
    if not isinstance(mapping, dict):
        raise ChannelError(f"{where}: mapping: must be a mapping of options")
    return ChannelConfig(
        name=name,
        journal=journal,
        source=_source(top.get("source") or {}, where),
        accept=_accept(top.get("accept") or {}, where),
        filters=tuple(_filter(f, where, i) for i, f in enumerate(_list(top, "filters", where))),
        mapping=dict(mapping),
        destinations=tuple(
            _destination(d, where, i) for i, d in enumerate(_list(top, "destinations", where))
        )
        or (Destination("store"),),
        retry=_retry(top.get("retry") or {}, where),
        return_destination=_return(top.get("return_destination"), where),
        retention=_retention(top.get("retention") or {}, where),
    )


def _return(value: Any, where: str) -> Destination | None:
    if value is None:
        return None
    data = _mapping(value, where, "return_destination")
    _known(data, where, "return_destination", {"type", "host", "port"})
    if data.get("type", "mllp") != "mllp":
        raise ChannelError(f"{where}: return_destination.type: must be mllp")
    return _destination({**data, "type": "mllp"}, where, -1, "return_destination")


def _retention(value: Any, where: str) -> Retention:
    data = _mapping(value, where, "retention")
    _known(data, where, "retention", set(Retention.__slots__))
    d = Retention()
    days = float(_number(data, "days", d.days, where, "retention", 0))
    window = float(_number(data, "duplicate_window_days", days, where, "retention", 0))
    if window < days:
        raise ChannelError(f"{where}: retention.duplicate_window_days: must be >= retention.days")
    every = float(_number(data, "prune_every", d.prune_every, where, "retention", 0))
    return Retention(days, window, every)


def _mapping(value: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ChannelError(f"{where}: {key or 'top level'}: must be a mapping")
    return value


def _known(data: dict[str, Any], where: str, key: str, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        prefix = f"{key}." if key else ""
        raise ChannelError(f"{where}: {prefix}{unknown[0]}: unknown key")


def _list(top: dict[str, Any], key: str, where: str) -> list[Any]:
    value = top.get(key) or []
    if not isinstance(value, list):
        raise ChannelError(f"{where}: {key}: must be a list")
    return value


def _number(
    data: dict[str, Any],
    key: str,
    default: float,
    where: str,
    prefix: str,
    minimum: float,
    integer: bool = False,
) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ChannelError(f"{where}: {prefix}.{key}: must be a number >= {minimum}")
    if integer and not isinstance(value, int):
        raise ChannelError(f"{where}: {prefix}.{key}: must be a whole number")
    return value


def _source(value: Any, where: str) -> Source:
    data = _mapping(value, where, "source")
    _known(data, where, "source", set(Source.__slots__))
    kind = data.get("type", "mllp")
    if kind not in ("mllp", "folder"):
        raise ChannelError(f"{where}: source.type: must be mllp or folder, not {kind!r}")
    if kind == "folder" and not isinstance(data.get("path"), str):
        raise ChannelError(f"{where}: source.path: a folder source needs a path")
    d = Source()
    return Source(
        type=kind,
        host=str(data.get("host", d.host)),
        port=_number(data, "port", d.port, where, "source", 0, integer=True),
        max_message_bytes=_number(
            data, "max_message_bytes", d.max_message_bytes, where, "source", 64, integer=True
        ),
        idle_timeout=float(_number(data, "idle_timeout", d.idle_timeout, where, "source", 0.01)),
        frame_timeout=float(_number(data, "frame_timeout", d.frame_timeout, where, "source", 0.01)),
        path=data.get("path"),
        pattern=str(data.get("pattern", d.pattern)),
        poll_seconds=float(_number(data, "poll_seconds", d.poll_seconds, where, "source", 0.01)),
        done=data.get("done"),
        max_connections=_number(
            data, "max_connections", d.max_connections, where, "source", 1, integer=True
        ),
    )


def _strings(
    data: dict[str, Any], key: str, where: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ChannelError(f"{where}: accept.{key}: must be a list of strings")
    return tuple(str(v) for v in value)


def _accept(value: Any, where: str) -> AcceptPolicy:
    data = _mapping(value, where, "accept")
    _known(data, where, "accept", {"message_types", "versions", "processing_ids"})
    versions = _strings(data, "versions", where, SUPPORTED_VERSIONS)
    for v in versions:
        if v not in SUPPORTED_VERSIONS:
            raise ChannelError(
                f"{where}: accept.versions: {v!r} is not one of {SUPPORTED_VERSIONS}"
            )
    return AcceptPolicy(
        message_types=_strings(data, "message_types", where, ()),
        versions=versions,
        processing_ids=_strings(data, "processing_ids", where, AcceptPolicy().processing_ids),
    )


def _filter(value: Any, where: str, index: int) -> FieldFilter:
    key = f"filters[{index}]"
    data = _mapping(value, where, key)
    _known(data, where, key, {"field", "in", "not_in", "matches"})
    match = _FIELD_RE.match(str(data.get("field", "")))
    if match is None:
        raise ChannelError(f"{where}: {key}.field: must look like PID-3, PID-3.4 or PID-3.4.1")
    ops = [k for k in ("in", "not_in", "matches") if k in data]
    if len(ops) != 1:
        raise ChannelError(f"{where}: {key}: needs exactly one of in, not_in, matches")
    seg, fld, comp, sub = match.groups()
    base = FieldFilter(seg, int(fld), int(comp) if comp else None, int(sub) if sub else None)
    if ops[0] == "matches":
        try:
            pattern = re.compile(str(data["matches"]))
        except re.error as exc:
            raise ChannelError(f"{where}: {key}.matches: {exc}") from exc
        return FieldFilter(
            base.segment, base.field, base.component, base.subcomponent, pattern=pattern
        )
    values = data[ops[0]]
    if not isinstance(values, list):
        raise ChannelError(f"{where}: {key}.{ops[0]}: must be a list")
    strings = tuple(str(v) for v in values)
    if ops[0] == "in":
        return FieldFilter(
            base.segment, base.field, base.component, base.subcomponent, values_in=strings
        )
    return FieldFilter(
        base.segment, base.field, base.component, base.subcomponent, values_not_in=strings
    )


def _destination(value: Any, where: str, index: int, key: str = "") -> Destination:
    key = key or f"destinations[{index}]"
    data = _mapping(value, where, key)
    _known(data, where, key, {"type", "path", "host", "port"})
    kind = data.get("type")
    if kind == "store":
        return Destination("store")
    if kind == "folder":
        if not isinstance(data.get("path"), str):
            raise ChannelError(f"{where}: {key}.path: a folder destination needs a path")
        return Destination("folder", path=data["path"])
    if kind == "mllp":
        port = data.get("port")
        if not isinstance(data.get("host"), str) or not isinstance(port, int):
            raise ChannelError(f"{where}: {key}: an mllp destination needs host and port")
        return Destination("mllp", host=data["host"], port=port)
    raise ChannelError(f"{where}: {key}.type: must be store, folder or mllp, not {kind!r}")


def _retry(value: Any, where: str) -> RetryPolicy:
    data = _mapping(value, where, "retry")
    _known(data, where, "retry", set(RetryPolicy.__slots__))
    d = RetryPolicy()
    return RetryPolicy(
        max_attempts=_number(data, "max_attempts", d.max_attempts, where, "retry", 1, integer=True),
        initial_delay=float(_number(data, "initial_delay", d.initial_delay, where, "retry", 0)),
        max_delay=float(_number(data, "max_delay", d.max_delay, where, "retry", 0)),
        multiplier=float(_number(data, "multiplier", d.multiplier, where, "retry", 1)),
    )
