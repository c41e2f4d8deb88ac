"""Options, results and the per-message state of the v2-to-FHIR mapping.

The mapping follows the HL7 Version 2 to FHIR IG 1.0.0 (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).
A :class:`MapContext` collects the transaction Bundle entries, the codes no map knew
(:class:`UnmappedCode`) and non-fatal issues while one message is mapped.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cmio.interfaces.hl7v2.message import Message, MessageType

__all__ = [
    "MapContext",
    "MappingError",
    "MappingOptions",
    "MappingResult",
    "Merge",
    "PatientLinks",
    "Translate",
    "UnmappedCode",
    "identifier_query",
    "name_uuid",
    "uuid_text",
]

Translate = Callable[[str, str], Sequence[tuple[str, str, str]]]
"""``translate(system, code) -> [(target system, target code, display), ...]`` (ConceptMap $translate)."""

PatientLinks = Callable[[str, str], Sequence[Mapping[str, Any]]]
"""``patient_links(system, value) -> [Patient.link, ...]``: the links the stored patient has."""

_PLAIN = re.compile(r"[A-Za-z0-9:/._~-]*\Z")
_ID_NAMESPACE = uuid.UUID("3c5b8f0e-2a7d-4f4e-8d61-9b0f6a2c7e14")
_MATCHED_BY_SEARCH = frozenset({"Patient", "Encounter", "Practitioner"})
_NAMESPACE = uuid.UUID("6f1c2a57-0d0e-4b8e-9a43-7c1d1b0e5a11")
_ID_PREFIX = _ID_NAMESPACE.bytes
# RFC 9562 section 5.5: version 5 in bits 48-51, variant 0b10 in bits 64-65
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V5_SET = (5 << 76) | (0x8000 << 48)


def uuid_text(value: int) -> str:
    """The canonical text form of a 128-bit UUID value (what ``str(uuid.UUID(int=value))`` gives).

    See https://www.rfc-editor.org/rfc/rfc9562#section-4 .
    """
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def name_uuid(prefix: bytes, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))`` with ``prefix = namespace.bytes``, computed directly.

    See https://www.rfc-editor.org/rfc/rfc9562#section-5.5 (name-based, SHA-1).
    """
    digest = hashlib.sha1(prefix + name.encode("utf-8"), usedforsecurity=False).digest()
    return uuid_text((int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)


class MappingError(ValueError):
    """A message the mapping cannot turn into FHIR; ``path`` names the v2 element (``PID-3``).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


@dataclass(frozen=True, slots=True)
class UnmappedCode:
    """A code kept as sent because no vocabulary map or ConceptMap knew it.

    Attributes:
        path: where it was, e.g. ``OBX[2]-3`` or ``PID-8``.
        system: the v2 coding system or table (``HL70001``, ``99LAB``...) or ``""``.
        code: the code as sent.
        display: its text as sent.
        reason: why it is reported.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """

    path: str
    system: str
    code: str
    display: str
    reason: str


@dataclass(frozen=True, slots=True)
class Merge:
    """An ADT^A40 merge: ``prior`` (MRG-1) is replaced by ``surviving`` (PID-3).

    Both are ``(system, value)`` identifiers; apply with
    :func:`cmio.interfaces.hl7v2.mapping.merge.apply_merge`.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """

    surviving: tuple[str, str]
    prior: tuple[str, str]


@dataclass(frozen=True)
class MappingOptions:
    """How a channel maps its messages.

    Attributes:
        translate: ConceptMap translation for local codes (``None``: codes are kept as sent).
        authority_systems: assigning authority namespace (CX.4.1/HD.1) -> identifier system URI;
            also gives a namespace sent without its universal id the system it has when sent
            with it (else ``urn:id:<namespace>``), so both spellings find the same patient.
            Identifiers sent without an authority belong to the sending facility (MSH-4):
            map it here to the hospital's system when, say, a lab sends bare MRNs.
        coding_systems: extra v2 coding system names (CWE.3) -> code system URI.
        local_system_prefix: prefix of the system URI given to local coding systems
            (``99LAB`` -> ``urn:cmio:v2:cs:99LAB``).
        timezone: UTC offset (``+HH:MM`` or ``Z``) for times sent without one.
        update_patient: ``"adt"`` (default): ADT messages update the Patient, other messages
            create it only when it is not there yet; ``"always"`` or ``"never"``.
        deterministic_ids: write results, orders, immunizations, documents... with ``PUT
            Type/id``, the id derived from their identifier (no search per resource; the
            default); ``False``: conditional updates by identifier, for stores where those
            resources may already exist under other ids.
        patient_links: looks up the ``Patient.link`` entries the stored patient with this
            identifier has (e.g. :func:`cmio.interfaces.hl7v2.mapping.merge.store_patient_links`).
            An ADT replaces the whole Patient; with this lookup it carries the links an A40
            merge set (and ``active: false`` for a replaced patient), so a later ADT for a
            merged patient does not undo the merge. ``None``: links are not looked up.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """

    translate: Translate | None = None
    authority_systems: Mapping[str, str] = field(default_factory=dict)
    coding_systems: Mapping[str, str] = field(default_factory=dict)
    local_system_prefix: str = "urn:cmio:v2:cs:"
    timezone: str = "Z"
    update_patient: str = "adt"
    deterministic_ids: bool = True
    patient_links: PatientLinks | None = None
    provenance: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MappingOptions:
        """Options from a channel's ``mapping:`` section (YAML); unknown keys are an error."""
        if not data:
            return cls()
        known = {"authority_systems", "coding_systems", "local_system_prefix", "timezone",
                 "update_patient", "deterministic_ids", "provenance"}  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mapping option(s) {unknown}; known: {sorted(known)}")
        if data.get("update_patient", "adt") not in ("adt", "always", "never"):
            raise ValueError("mapping option update_patient must be adt, always or never")
        for key in ("authority_systems", "coding_systems"):
            table = data.get(key, {})
            if not isinstance(table, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in table.items()
            ):
                raise ValueError(f"mapping option {key} must map names to URIs (strings)")
        for key in ("deterministic_ids", "provenance"):
            if not isinstance(data.get(key, True), bool):
                raise ValueError(f"mapping option {key} must be true or false")
        for key in ("local_system_prefix", "timezone"):
            if key in data and not isinstance(data[key], str):
                raise ValueError(f"mapping option {key} must be a string")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class MappingResult:
    """The FHIR transaction Bundle for one message, and what could not be mapped.

    Attributes:
        bundle: a ``transaction`` Bundle (conditional creates/updates; post it to the base).
        unmapped: codes kept as sent (in ``coding`` without a standard system, or ``text``).
        issues: non-fatal problems (a malformed optional value that was left out).
        patient_key: ``system|value`` of the patient (per-patient ordering), or ``None``.
        message_type: MSH-9.
        merge: for ADT^A40, the merge to apply after the Bundle.
        ignored_segments: ids of the segments present that the map does not use (Z-segments,
            EVN, PD1, PV2 ...), so what was not carried into FHIR is visible.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """

    bundle: dict[str, Any]
    unmapped: list[UnmappedCode]
    issues: list[str]
    patient_key: str | None
    message_type: MessageType
    merge: Merge | None = None
    ignored_segments: list[str] = field(default_factory=list)


class MapContext:
    """Per-message state: Bundle entries, unmapped codes, issues.

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ .
    """

    def __init__(self, message: Message, options: MappingOptions) -> None:
        self.message = message
        self.options = options
        self.entries: list[dict[str, Any]] = []
        self.unmapped: list[UnmappedCode] = []
        self.issues: list[str] = []
        seed = f"{message.sending_application}|{message.sending_facility}|{message.control_id}"
        self._base = uuid.uuid5(_NAMESPACE, seed).int
        self._urls: dict[str, str] = {}
        self.patient_key: str | None = None
        """``system|value`` of the patient once the PID is mapped."""
        self.systems: dict[str, tuple[str, bool]] = {}
        """v2 coding system name -> (URI, standard?), filled as names are met."""
        self.datetimes: dict[str, str] = {}
        """v2 DTM text -> FHIR dateTime, for the valid values met (OBX-14 repeats per OBX)."""

    def full_url(self, key: str) -> str:
        """A ``urn:uuid:`` for one resource of this message (the same for the same key).

        Derived from the sender and control id, so a message maps to the same Bundle each time.
        """
        url = self._urls.get(key)
        if url is None:
            # vary the low bits (the UUID's node field): the version and variant bits stay
            url = "urn:uuid:" + uuid_text(self._base ^ (len(self._urls) + 1))
            self._urls[key] = url
        return url

    def has(self, key: str) -> bool:
        """Whether a resource with this key has a fullUrl already."""
        return key in self._urls

    def put(self, resource: dict[str, Any], key: str, query: str) -> str:
        """Add an update matched by identifier; returns the entry's fullUrl.

        Patients, encounters and practitioners (which may exist already, under any id) get a
        conditional update ``PUT Type?query``. The resources only v2 messages write get
        ``PUT Type/id`` with an id derived from their identifier query (``deterministic_ids``):
        the same identifier always gives the same id, so a resend updates it without a search.
        """
        url = self.full_url(key)
        rtype = resource["resourceType"]
        if self.options.deterministic_ids and rtype not in _MATCHED_BY_SEARCH:
            rid = name_uuid(_ID_PREFIX, f"{rtype}?{query}")
            resource["id"] = rid
            request = {"method": "PUT", "url": f"{rtype}/{rid}"}
        else:
            request = {"method": "PUT", "url": f"{rtype}?{query}"}
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return url

    def create(self, resource: dict[str, Any], key: str, if_none_exist: str | None) -> str:
        """Add a (conditional) create (``POST`` with ``ifNoneExist``); returns the fullUrl."""
        url = self.full_url(key)
        request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return url

    def report(self, path: str, system: str, code: str, display: str, reason: str) -> None:
        """Record a code no map knew."""
        self.unmapped.append(UnmappedCode(path, system, code, display, reason))

    def issue(self, path: str, text: str) -> None:
        """Record a non-fatal problem."""
        self.issues.append(f"{path}: {text}")


def identifier_query(system: str, value: str) -> str:
    """``identifier=system|value``, search-escaped (``\\, \\| \\$ \\\\``) and percent-encoded.

    See https://hl7.org/fhir/R4/search.html#escaping and #token.
    """
    safe = ":/.-_~"

    def part(text: str) -> str:
        if _PLAIN.match(text):
            return text
        for c in "\\,|$":
            text = text.replace(c, "\\" + c)
        return quote(text, safe=safe)

    return f"identifier={part(system)}|{part(value)}" if system else f"identifier=|{part(value)}"
