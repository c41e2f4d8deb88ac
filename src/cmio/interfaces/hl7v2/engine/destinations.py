"""Where processed messages go: the FHIR store (through a sink), a folder, another MLLP peer.

The store is reached through :class:`TransactionSink`, which the layer above
implements with the in-process FHIR router (so the engine does not import the API).
Every store write carries a marker ``Provenance`` with an id derived from the
channel, sender and MSH-10 (https://hl7.org/fhir/R4/provenance.html): it is committed
atomically with the message's resources, so after a crash the engine can tell a
message that reached the store from one that did not, and never applies it twice.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from cmio.interfaces.hl7v2.engine.ack import read_header
from cmio.interfaces.hl7v2.engine.mllp import MllpClient, MllpError

__all__ = [
    "DownstreamError",
    "FolderDestination",
    "MllpDestination",
    "SinkItem",
    "SinkOutcome",
    "TransactionSink",
    "marker_id",
    "marker_resource",
    "with_marker",
]


class DownstreamError(Exception):
    """A destination failed; ``retryable`` tells whether a later attempt may succeed."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SinkOutcome:
    """The store's answer to one transaction Bundle.

    Attributes:
        status: HTTP-like status (2xx stored; 4xx refused for good; 5xx try again).
        detail: the reason when not 2xx (OperationOutcome text).
        locations: ``Type/id/_history/v`` of each entry written.
    """

    status: int
    detail: str = ""
    locations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SinkItem:
    """One message's writes.

    Attributes:
        bundle: the transaction Bundle (it holds the marker unless ``marker`` is set).
        merge: an ADT^A40 merge to apply after the Bundle (the mapping's ``Merge``).
        marker: the marker Provenance to write last, after the merge.
        channel: the channel that received the message (for its audit records).
        sender: MSH-3|MSH-4 of the message.
        control_id: MSH-10 of the message.
        ahead: the store's work on the Bundle done ahead by the worker process (what the
            sink's ``ahead_spec`` builds returned; None: the store does it all).
    """

    bundle: dict[str, Any]
    merge: Any = None
    marker: dict[str, Any] | None = None
    channel: str = ""
    sender: str = ""
    control_id: str = ""
    ahead: Any = None


class TransactionSink(Protocol):
    """The FHIR store as the engine sees it."""

    def apply(self, items: Sequence[SinkItem]) -> list[SinkOutcome]:
        """Apply each item on its own (all or nothing per item), in one durable commit if possible."""
        ...

    def exists(self, resource_type: str, resource_id: str) -> bool:
        """Whether a resource is in the store."""
        ...


def marker_id(channel: str, sender: str, control_id: str) -> str:
    """The id of the Provenance that marks a message as applied (a valid FHIR id)."""
    digest = hashlib.sha256(f"{channel}\x00{sender}\x00{control_id}".encode()).hexdigest()
    return f"v2-{digest[:48]}"


def marker_resource(
    bundle: dict[str, Any],
    marker: str,
    *,
    channel: str,
    sender: str,
    control_id: str,
    recorded: str,
) -> dict[str, Any]:
    """The marker Provenance of a message, targeting what its Bundle writes."""
    targets = []
    for entry in bundle.get("entry") or []:
        full_url = entry.get("fullUrl")
        request = entry.get("request") or {}
        if full_url and request.get("method") in ("POST", "PUT"):
            targets.append({"reference": full_url})
    if not targets:
        targets = [{"display": f"HL7 v2 message {control_id}"}]
    return {
        "resourceType": "Provenance",
        "id": marker,
        "target": targets,
        "recorded": recorded,
        "activity": {
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "code": "CREATE",
            }]
        },
        "agent": [{"who": {"display": sender.replace("|", " ").strip() or "unknown sender"}}],
        "entity": [{
            "role": "source",
            "what": {
                "identifier": {"system": f"urn:cmio:hl7v2:{channel}", "value": control_id},
                "display": f"HL7 v2 message {control_id} from {sender}",
            },
        }],
    }  # fmt: skip


def with_marker(bundle: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    """The bundle plus a ``PUT Provenance/{id}`` entry: the marker commits with the message."""
    marker = provenance["id"]
    entries = list(bundle.get("entry") or [])
    entries.append({
        "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, marker)}",
        "resource": provenance,
        "request": {"method": "PUT", "url": f"Provenance/{marker}"},
    })  # fmt: skip
    out = dict(bundle)
    out["resourceType"] = "Bundle"
    out["type"] = "transaction"
    out["entry"] = entries
    return out


class FolderDestination:
    """Writes each message's FHIR Bundle as ``{channel}-{journal id}.json`` (atomic rename)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, name: str, bundle: dict[str, Any]) -> None:
        """Write one Bundle; an existing file of the same name is replaced (idempotent)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tmp = self.path / f".{name}.tmp"
            with tmp.open("wb") as fh:
                fh.write(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(self.path / f"{name}.json")
        except OSError as exc:
            raise DownstreamError(f"folder {self.path}: {exc}", retryable=True) from exc


class MllpDestination:
    """Forwards the original message to another MLLP endpoint and checks its ACK."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.client = MllpClient(host, port, timeout=timeout)

    def send(self, raw: bytes) -> None:
        """Send and wait for the ACK: AA/CA pass, AR/CR may pass later, AE/CE never will."""
        try:
            ack = self.client.send(raw)
        except (OSError, MllpError) as exc:
            self.client.close()
            raise DownstreamError(str(exc), retryable=True) from exc
        header = read_header(ack)
        code = _ack_code(ack, header.field_sep if header else "|")
        if code in ("AA", "CA"):
            return
        where = f"{self.client.host}:{self.client.port}"
        raise DownstreamError(
            f"{where} answered {code or 'no MSA'}", retryable=code in ("AR", "CR")
        )

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


def _ack_code(ack: bytes, sep: str) -> str:
    for line in ack.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"MSA"):
            parts = line.decode("utf-8", "replace").split(sep)
            return parts[1] if len(parts) > 1 else ""
    return ""
