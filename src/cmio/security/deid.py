"""HIPAA Safe Harbor de-identification of FHIR resources for analytics exports and views.

45 CFR 164.514(b)(2) lists 18 identifiers of the individual, relatives, employers and
household members that must go
(https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-E/section-164.514).
A :class:`Deidentifier` walks each resource with the R4 type model, so every element
is handled by its datatype wherever it sits (extensions and contained resources
included):

* names (``HumanName``), telecom (``ContactPoint``: phone, fax, email), identifiers
  (``Identifier``: MRN, SSN, insurance, licence, device ids), signatures, photos and
  every ``Attachment``'s data and URL, ``url`` values, and ``base64Binary`` are removed;
* addresses keep state, country, ``use``/``type`` and the ZIP3 (``000`` for the 17
  restricted ones); lines, city, district, text and geolocation go;
* every ``date``/``dateTime``/``instant`` is shifted by one offset per patient (a keyed
  hash of the patient id, 1 to ``max_shift_days`` days either way), the same for every
  resource in that patient's compartment, so intervals are kept; a birth date making
  the patient 90 or older is replaced by the year that reads 90, flagged with the
  extension :data:`AGE_90_EXTENSION`;
* resource ids become stable pseudonyms (HMAC-SHA256 of ``Type/id`` with the secret
  key) and every reference is rewritten to them, so references still resolve;
  ``Reference.display`` goes;
* free text goes: narrative, ``Annotation`` (notes, comments), and every ``string``
  or ``markdown`` except ``Coding.display``, a coded ``CodeableConcept.text`` and a
  quantity's ``unit`` (descriptions, ``valueString``, device serials and lot numbers,
  network addresses: all strings).

Unknown elements are dropped. The output carries the security label ``PSEUDED``
(https://terminology.hl7.org/CodeSystem-v3-ObservationValue.html).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from cmio.indexing.compartments import collect_references, compartment_paths
from cmio.model import Model
from cmio.security.deid_values import AGE_CAP, age_on, parse_day
from cmio.security.deid_walk import Walk
from cmio.security.secrets import MissingSecretError, read_secret, read_secret_file

__all__ = [
    "AGE_90_EXTENSION",
    "KEY_VARIABLE",
    "DeidPolicy",
    "Deidentifier",
]

KEY_VARIABLE = "CMIO_DEID_KEY"
"""The secret: ``$CMIO_DEID_KEY`` or a 0600 file named by ``$CMIO_DEID_KEY_FILE``."""

AGE_90_EXTENSION = "https://cmio.dev/fhir/StructureDefinition/deid-age-90-or-over"
"""On a de-identified Patient whose birth date was capped: the age reads 90, meaning 90+."""

PSEUDED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}

_MIN_KEY_BYTES = 16
_LITERAL = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class DeidPolicy:
    """What the de-identification keeps and how it generalizes.

    Attributes:
        max_shift_days: dates move by 1 to this many days, forward or back.
        as_of: the day ages are computed on for living patients (default: today).
        drop_types: resource types left out entirely (``Binary`` holds raw documents).
    """

    max_shift_days: int = 180
    as_of: date | None = None
    drop_types: frozenset[str] = field(default_factory=lambda: frozenset({"Binary"}))


class Deidentifier:
    """De-identifies resources one by one (or as an NDJSON stream) with one key and policy.

    The same key gives the same pseudonyms and date offsets across runs and across
    resource types, so de-identified exports can be joined; without the key neither
    can be reversed. See the module docstring for the rules.
    """

    def __init__(self, key: bytes, model: Model, policy: DeidPolicy | None = None) -> None:
        """Build a de-identifier.

        Args:
            key: the secret (at least 16 bytes), from :meth:`from_environment` or a 0600 file.
            model: the FHIR model (element types, Patient compartment).
            policy: the rules (default :class:`DeidPolicy`).

        Raises:
            ValueError: the key is shorter than 16 bytes.
        """
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"the de-identification key must have at least {_MIN_KEY_BYTES} bytes")
        self._key = key
        self.model = model
        self.policy = policy or DeidPolicy()
        self._paths = compartment_paths(model, "Patient")
        self._as_of = self.policy.as_of or datetime.now(UTC).date()

    @classmethod
    def load(
        cls, model: Model, key_file: str | Path | None = None, policy: DeidPolicy | None = None
    ) -> Deidentifier:
        """The de-identifier keyed by ``key_file`` (0600/0400) or else by the environment.

        Raises:
            MissingSecretError: no key is configured.
            InsecureSecretError: the key file is readable by others.
        """
        if key_file is not None:
            return cls(read_secret_file(key_file), model, policy)
        return cls.from_environment(model, policy)

    @classmethod
    def from_environment(
        cls, model: Model, policy: DeidPolicy | None = None, environ: dict[str, str] | None = None
    ) -> Deidentifier:
        """The de-identifier keyed by ``$CMIO_DEID_KEY`` or the 0600 file ``$CMIO_DEID_KEY_FILE``.

        Raises:
            MissingSecretError: no key is configured.
            InsecureSecretError: the key file is readable by others.
        """
        key = read_secret(KEY_VARIABLE, environ)
        if key is None:
            raise MissingSecretError(
                f"no de-identification key: set ${KEY_VARIABLE}_FILE to a file only you can "
                f"read (e.g. `python -c 'import secrets; print(secrets.token_hex(32))' > "
                f"deid.key && chmod 600 deid.key`) or ${KEY_VARIABLE}"
            )
        return cls(key, model, policy)

    def _mac(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(self._key, purpose + b"\x00" + value.encode(), hashlib.sha256).digest()

    def pseudonym(self, resource_type: str, resource_id: str) -> str:
        """The stable pseudonymous id of ``resource_type/resource_id`` (40 hex digits)."""
        return self._mac(b"id", f"{resource_type}/{resource_id}").hex()[:40]

    def offset_days(self, patient_id: str) -> int:
        """The date offset of a patient (or of a resource outside any patient compartment)."""
        span = self.policy.max_shift_days
        n = int.from_bytes(self._mac(b"shift", patient_id)[:8], "big") % (2 * span)
        return n - span if n < span else n - span + 1

    def patient_of(self, resource: dict[str, Any]) -> str | None:
        """The id of the patient whose compartment holds ``resource`` (the first one found)."""
        rtype = resource.get("resourceType")
        if rtype == "Patient":
            rid = resource.get("id")
            return rid if isinstance(rid, str) else None
        refs: list[str] = []
        for steps in self._paths.get(str(rtype), ()):
            collect_references(resource, steps, refs)
        for ref in refs:
            m = _LITERAL.match(ref)
            if m is not None and m.group(1) == "Patient":
                return m.group(2)
        return None

    def rewrite_reference(self, reference: str) -> str | None:
        """A reference pointing at the pseudonymized target (None: cannot be kept).

        ``Type/id``, absolute URLs and versioned references become ``Type/pseudonym``;
        ``urn:uuid:`` references get a pseudonymous UUID; a conditional reference
        (``Type?identifier=...``) becomes ``Type/`` + the pseudonym of its query; a
        contained reference (``#id``) is kept.
        """
        if reference.startswith("#"):
            return reference
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            digest = self._mac(b"urn", reference).hex()
            return f"urn:uuid:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        m = _LITERAL.match(reference)
        if m is not None:
            return f"{m.group(1)}/{self.pseudonym(m.group(1), m.group(2))}"
        c = _CONDITIONAL.match(reference)
        if c is not None:
            return f"{c.group(1)}/{self.pseudonym(c.group(1), '?' + c.group(2))}"
        return None

    def deidentify(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """The de-identified copy of one resource (the input is not changed).

        Args:
            resource: a FHIR resource as parsed JSON.

        Returns:
            A new resource, or None when its type is left out by the policy or unknown.
        """
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype in self.policy.drop_types:
            return None
        tdef = self.model.types.get(rtype)
        if tdef is None or tdef.kind != "resource":
            return None
        patient = self.patient_of(resource)
        rid = resource.get("id")
        subject = patient if patient is not None else f"{rtype}/{rid}"
        walk = Walk(self, self.offset_days(subject))
        out = walk.resource(resource, tdef.json_index, top=True)
        meta = out.setdefault("meta", {})
        security = meta.setdefault("security", [])
        if PSEUDED not in security:
            security.append(dict(PSEUDED))
        if rtype in ("Patient", "Person", "RelatedPerson"):
            self._cap_age(resource, out)
        return out

    def _cap_age(self, source: dict[str, Any], out: dict[str, Any]) -> None:
        birth = source.get("birthDate")
        if not isinstance(birth, str):
            return
        died = source.get("deceasedDateTime")
        when = parse_day(died) if isinstance(died, str) else None
        when = when or self._as_of
        age = age_on(birth, when)
        if age is None or age < AGE_CAP:
            return
        out["birthDate"] = f"{when.year - AGE_CAP:04d}"
        out.pop("_birthDate", None)
        out.setdefault("extension", []).append({"url": AGE_90_EXTENSION, "valueBoolean": True})

    def deidentify_json(self, data: bytes) -> bytes | None:
        """One resource's JSON de-identified (the ``transform`` hook of the exporters)."""
        out = self.deidentify(orjson.loads(data))
        return None if out is None else orjson.dumps(out)

    def deidentify_all(self, resources: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """De-identify a stream of resources, leaving out those the policy drops."""
        for resource in resources:
            out = self.deidentify(resource)
            if out is not None:
                yield out

    def deidentify_ndjson(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        """NDJSON in, NDJSON out (one resource per line; blank lines skipped).

        Raises:
            ValueError: a line is not a JSON object (its line number is named).
        """
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"line {number}: not JSON ({exc})") from None
            if not isinstance(resource, dict):
                raise ValueError(f"line {number}: not a JSON object")
            out = self.deidentify(resource)
            if out is not None:
                yield orjson.dumps(out) + b"\n"
