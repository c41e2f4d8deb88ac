"""Audit records serialized from pre-serialized parts: the canonical bytes, built cheaply.

Most of an AuditEvent is the same for every request of one caller: the agents (user,
client application, network address, server) depend only on the grant, the address
and the server; ``type``, ``subtype``, ``action`` and the BALP profile only on the
interaction; ``source`` only on the server. :class:`EventTemplates` serializes those
parts once (JSON with sorted keys, as :func:`cmio.security.audit.chain.canonical`
does) and, per record, serializes only what varies (id, instant, outcome, entities)
and joins the parts in sorted key order. The bytes are exactly
``canonical(build_event(facts))`` (tested), so the hash chain and its verification are
unchanged; the writer thread no longer serializes anything. See
https://profiles.ihe.net/ITI/BALP/ and RFC 8785 for the canonical form's spirit.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import orjson

from cmio.security.audit.events import (
    BTG,
    AuditFacts,
    event_agents,
    event_entities,
    event_head,
    event_outcome_desc,
    event_source,
)

__all__ = ["Canonical", "EventTemplates"]

_SORT = orjson.OPT_SORT_KEYS
_PURPOSE = b',"purposeOfEvent":' + orjson.dumps([{"coding": [BTG]}], option=_SORT)


def _around(facts: AuditFacts) -> tuple[bytes, bytes]:
    """The canonical bytes of ``facts``' first entity before and after its ``\\x00``."""
    data = orjson.dumps(event_entities(facts)[0], option=_SORT)
    before, after = data.split(orjson.dumps(_MARK)[1:-1])
    return before, after


_MARK = "\x00"
_PATIENT = _around(AuditFacts("read", patient=_MARK))
_RESOURCE = _around(AuditFacts("read", resources=(_MARK,)))
_REQUEST = _around(AuditFacts("read", correlation_id=_MARK))


def _entities(facts: AuditFacts) -> bytes:
    """``AuditEvent.entity`` as canonical bytes (empty: none); the common shape of a read or
    a write (patient, resource, request id) spliced from pre-serialized parts."""
    source, grant = facts.source, facts.grant
    if (
        facts.patients
        or facts.resources
        or facts.query is not None
        or (source is not None and source.message)
        or (grant is not None and grant.break_glass is not None)
    ):
        return orjson.dumps(event_entities(facts), option=_SORT)
    parts = []
    if facts.patient:
        parts.append(_PATIENT[0] + orjson.dumps(facts.patient)[1:-1] + _PATIENT[1])
    if facts.resource_type and facts.resource_id:
        ref = f"{facts.resource_type}/{facts.resource_id}"
        if facts.version is not None:
            ref += f"/_history/{facts.version}"
        parts.append(_RESOURCE[0] + orjson.dumps(ref)[1:-1] + _RESOURCE[1])
    if facts.correlation_id:
        parts.append(_REQUEST[0] + orjson.dumps(facts.correlation_id)[1:-1] + _REQUEST[1])
    return b"[" + b",".join(parts) + b"]" if parts else b""


class Canonical(NamedTuple):
    """One record already in canonical form.

    Attributes:
        data: the AuditEvent as canonical JSON bytes (sorted keys, no whitespace).
        recorded: its ``recorded`` instant (stored beside it for time-range export).
    """

    data: bytes
    recorded: str


class EventTemplates:
    """Renders :class:`AuditFacts` to canonical bytes from cached parts (see module).

    Args:
        limit: cached callers (and interaction heads) kept before the cache starts over.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        # (id(grant), address, server, id(source)) -> (grant, source, agent bytes); the
        # entry holds grant and source, so their ids cannot be reused while cached.
        self._agents: dict[tuple[int, str | None, str, int], tuple[object, object, bytes]] = {}
        # (interaction, operation, one patient, server) -> (action, meta, tail) bytes
        self._heads: dict[tuple[str, str | None, bool, str], tuple[bytes, bytes, bytes]] = {}

    def _agent(self, facts: AuditFacts) -> bytes:
        grant, source = facts.grant, facts.source
        key = (id(grant), facts.remote_addr, facts.server, id(source))
        hit = self._agents.get(key)
        if hit is not None and hit[0] is grant and hit[1] is source:
            return hit[2]
        data = orjson.dumps(event_agents(facts), option=_SORT)
        if len(self._agents) >= self.limit:
            self._agents.clear()
        self._agents[key] = (grant, source, data)
        return data

    def _head(self, facts: AuditFacts) -> tuple[bytes, bytes, bytes]:
        one_patient = bool(facts.patient) and not facts.patients
        key = (facts.interaction, facts.operation, one_patient, facts.server)
        hit = self._heads.get(key)
        if hit is not None:
            return hit
        action, event_type, subtype, profile = event_head(facts)
        meta = b"" if profile is None else b',"meta":' + orjson.dumps({"profile": [profile]})
        tail = b"".join(
            (
                b',"resourceType":"AuditEvent","source":',
                orjson.dumps(event_source(facts.server), option=_SORT),
                b',"subtype":',
                orjson.dumps(subtype, option=_SORT),
                b',"type":',
                orjson.dumps(event_type, option=_SORT),
                b"}",
            )
        )
        parts = (b'{"action":' + orjson.dumps(action) + b',"agent":', meta, tail)
        if len(self._heads) >= self.limit:
            self._heads.clear()
        self._heads[key] = parts
        return parts

    def render(self, facts: AuditFacts) -> Canonical:
        """The canonical bytes of ``build_event(facts)`` (a fresh random id if it has none)."""
        start, meta, tail = self._head(facts)
        entities = _entities(facts)
        desc = event_outcome_desc(facts)
        grant = facts.grant
        data = b"".join(
            (
                start,
                self._agent(facts),
                b',"entity":' + entities if entities else b"",
                b',"id":',
                orjson.dumps(facts.id or os.urandom(16).hex()),
                meta,
                b',"outcome":',
                orjson.dumps(facts.outcome),
                b',"outcomeDesc":' + orjson.dumps(desc) if desc else b"",
                _PURPOSE if grant is not None and grant.break_glass is not None else b"",
                b',"recorded":',
                orjson.dumps(facts.recorded),
                tail,
            )
        )
        return Canonical(data, facts.recorded)
