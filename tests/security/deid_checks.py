"""Checks shared by the de-identification tests: what of the input may not reach the output.

The input's identifying values are gathered by walking the input resources by key
(names, identifiers, telecom, address lines, cities, full ZIP codes, resource ids);
the output bytes are then scanned for each of them. Dates are checked per resource:
every ``YYYY-MM-DD`` of the output must be an input date of the same resource moved
by that resource's patient offset, and the same offset holds for all of a patient's
resources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
TOKEN = re.compile(rb"[0-9A-Za-z][0-9A-Za-z\-.]*")
DISPLAY = re.compile(rb'"display":"(?:[^"\\]|\\.)*"')
ZIP = re.compile(rb'"(\d{5})(?:-?\d{4})?"')


@dataclass
class Secrets:
    """Identifying strings of the input."""

    names: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    telecom: set[str] = field(default_factory=set)
    lines: set[str] = field(default_factory=set)
    cities: set[str] = field(default_factory=set)
    zips: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)

    def all(self) -> dict[str, set[str]]:
        return {
            "name": self.names,
            "identifier": self.identifiers,
            "telecom": self.telecom,
            "address line": self.lines,
            "city": self.cities,
            "zip": self.zips,
            "resource id": self.ids,
        }


def gather(resources: Iterable[dict[str, Any]]) -> Secrets:
    """The identifying values of ``resources``."""
    found = Secrets()
    for resource in resources:
        rid = resource.get("id")
        if isinstance(rid, str) and len(rid) >= 8:
            found.ids.add(rid)
        _walk(resource, found)
    return found


def _walk(node: Any, found: Secrets) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, found)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "name" and isinstance(value, list):
            for name in value:
                if isinstance(name, dict):
                    parts = [name.get("family"), *name.get("given", []), name.get("text")]
                    found.names.update(p for p in parts if isinstance(p, str) and len(p) >= 4)
        if key == "identifier":
            for ident in value if isinstance(value, list) else [value]:
                v = ident.get("value") if isinstance(ident, dict) else None
                if isinstance(v, str) and len(v) >= 5:
                    found.identifiers.add(v)
        if key == "telecom" and isinstance(value, list):
            found.telecom.update(t["value"] for t in value if isinstance(t.get("value"), str))
        if key == "address" and isinstance(value, str) and len(value) >= 7:
            found.identifiers.add(value)  # AuditEvent.agent.network.address: an IP or host
        if key in ("address", "valueAddress"):
            for addr in value if isinstance(value, list) else [value]:
                if not isinstance(addr, dict):
                    continue
                found.lines.update(x for x in addr.get("line", []) if len(x) >= 6)
                if isinstance(addr.get("city"), str) and len(addr["city"]) >= 5:
                    found.cities.add(addr["city"])
                if isinstance(addr.get("postalCode"), str) and len(addr["postalCode"]) >= 5:
                    found.zips.add(addr["postalCode"])
        _walk(value, found)


def scan(output: bytes, secrets: Secrets) -> list[str]:
    """Every identifying value of the input found in ``output`` (empty: none survived)."""
    leaks: list[str] = []
    # a family name may also be a code's display (White, Brown): names are looked for
    # outside Coding.display (the only display kept: Reference.display is dropped)
    undisplayed = DISPLAY.sub(b"", output)
    name_tokens = set(TOKEN.findall(undisplayed))
    tokens = set(TOKEN.findall(output))
    zips = set(ZIP.findall(output))
    for kind, values in secrets.all().items():
        for value in values:
            needle = value.encode()
            if kind == "zip":
                hit = needle[:5] in zips
            elif kind == "name":
                hit = needle in name_tokens if TOKEN.fullmatch(needle) else needle in undisplayed
            elif needle.startswith((b"http://", b"https://")):
                # a web site of an organization is the prefix of its code systems' URLs
                hit = re.search(re.escape(needle) + rb'/?"', output) is not None
            elif TOKEN.fullmatch(needle.rsplit(b":", 1)[-1]):
                # names, uuids, MRNs (urn:uuid:X: X): bounded by quotes, spaces, slashes, colons
                hit = needle.rsplit(b":", 1)[-1] in tokens
            else:
                hit = needle in output
            if hit:
                leaks.append(f"{kind} {value!r}")
    return sorted(leaks)


def days_of(resource: Any) -> list[str]:
    """Every ``YYYY-MM-DD`` in a resource's string values."""
    out: list[str] = []
    if isinstance(resource, dict):
        for value in resource.values():
            out.extend(days_of(value))
    elif isinstance(resource, list):
        for value in resource:
            out.extend(days_of(value))
    elif isinstance(resource, str):
        out.extend(DAY.findall(resource))
    return out


def shift(day: str, days: int) -> str:
    """``day`` moved by ``days``."""
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def offset_between(before: list[str], after: list[str]) -> set[int]:
    """The offsets that map some input day onto each output day (intersection)."""
    candidates: set[int] | None = None
    for out_day in set(after):
        d = date.fromisoformat(out_day)
        options = {(d - date.fromisoformat(b)).days for b in before}
        candidates = options if candidates is None else candidates & options
    return candidates or set()
