"""What every interaction needs: the store, the model, validation and settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cmio.api.hardening import HardeningPolicy
from cmio.model import Model
from cmio.security.oauth.settings import AuthSettings
from cmio.store.base import Repository

if TYPE_CHECKING:
    from cmio.api.audit import Auditor
    from cmio.bulk.jobs import ExportJobs
    from cmio.terminology.service import TerminologyService
    from cmio.validation.validator import Validator as ProfileValidator

__all__ = ["ID_RE", "Env", "Settings"]

ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Server settings (https://hl7.org/fhir/R4/http.html).

    Attributes:
        max_body_bytes: larger request bodies are refused with 413.
        max_bundle_entries: larger batch/transaction Bundles are refused with 413.
        default_count: page size when ``_count`` is absent.
        max_count: upper bound on ``_count``.
        keep_urn_ids: store a POSTed Bundle entry whose fullUrl is ``urn:uuid:X``
            with id X (used by bulk import so references stay stable).
        export_dir: where Bulk Data ``$export`` jobs write their NDJSON files.
        validation: checks on create/update beyond structure: ``off``, ``base``
            (invariants and required bindings of the R4 definitions) or
            ``profiles`` (also the profiles in ``meta.profile``). The server builds
            its Validator at start-up when this is not ``off`` (about a second).
    """

    max_body_bytes: int = 16 * 1024 * 1024
    max_bundle_entries: int = 10_000
    default_count: int = 50
    max_count: int = 1000
    keep_urn_ids: bool = False
    export_dir: str = "cmio-data/exports"
    validation: str = "base"
    terminology_db: str | None = "cmio-data/terminology.db"
    """The concept store of large code systems (``cmio terminology load``); used when the
    file exists (https://hl7.org/fhir/R4/terminology-service.html)."""
    hl7_journal: str = "cmio-data/hl7/journal.db"
    """The HL7 v2 engine's journal, read for ``/interfaces/health`` and ``/metrics``."""
    auth: AuthSettings | None = None
    """Authentication (bearer tokens, SMART on FHIR); None: off (in-process callers and tests).
    The product entry points switch it on (``CMIO_AUTH=off`` or ``--no-auth`` on loopback)."""

    audit: bool = False
    """Record every interaction in the hash-chained audit trail (:mod:`cmio.api.audit`);
    off for in-process callers and tests, on in the product (``CMIO_AUDIT=off`` disables)."""

    hardening: HardeningPolicy | None = None
    """CORS allow-list, rate and size limits (:mod:`cmio.api.hardening`); None: security
    headers and size limits only (tests). The product reads ``CMIO_CORS_ORIGINS``,
    ``CMIO_RATE_LIMIT`` ... (rate limit on by default)."""

    cds_clients: str | None = None
    """A JSON file of trusted CDS clients, issuer -> JWKS (``CMIO_CDS_CLIENTS``): their
    JWTs are accepted on ``/cds-services`` (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients)."""

    governance_approvers: str | None = None
    """Who approves governed artifacts, ``capacity=role,role;capacity=role``
    (``CMIO_GOVERNANCE_APPROVERS``, :meth:`cmio.governance.ApprovalPolicy.parse`); None:
    one clinical lead and one technical lead."""

    metrics: bool = True
    """Count and time every FHIR request for Prometheus ``/metrics`` (``CMIO_METRICS=off``
    disables the request metrics; the gauges stay)."""

    metrics_token: str | None = None
    """A static bearer token that may read ``/metrics`` only (``CMIO_METRICS_TOKEN``), for a
    Prometheus scraper; None: ``/metrics`` takes the same tokens as every other path."""

    metrics_role: str | None = None
    """The role a signed-in user needs to read ``/metrics`` (``CMIO_METRICS_ROLE``, e.g.
    ``informaticist``); None: any valid token. The scrape token is always accepted."""

    search_registry_max_age: float = 1.0
    """Seconds a worker trusts its last look at the store's custom SearchParameter
    registry (:mod:`cmio.bulk.search_registry`): a ``$reindex`` started by any process is
    in effect in every worker within this time (0: look before every request)."""

    hl7_channels: str | None = None
    """The HL7 v2 channel configurations (``CMIO_HL7_CHANNELS``: a folder of ``*.yaml``
    files, or files separated by the OS path separator) the web's error-queue replay
    uses, so a replayed message is mapped as its channel maps it; None: the default."""

    audit_journal: bool = True
    """With an embedded (SQLite) store, make the audit records of reads durable in an
    append-only journal beside the database, moved into the hash chain behind
    (:mod:`cmio.security.audit.journal`); ``CMIO_AUDIT_JOURNAL=off`` commits each group
    of records into the chain directly."""

    audit_loop_commit: bool = False
    """With the audit journal, write the records of one event-loop iteration together on
    the loop (:class:`cmio.security.audit.writer.LoopCommitter`, ``CMIO_AUDIT_LOOP_COMMIT=on``)
    instead of through the writer thread (the default: over HTTP the loop keeps serving
    while a group is written, which measured faster)."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from ``CMIO_MAX_BODY_BYTES`` and ``CMIO_MAX_BUNDLE_ENTRIES`` when set."""
        defaults = cls()
        return cls(
            max_body_bytes=int(environ.get("CMIO_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_bundle_entries=int(
                environ.get("CMIO_MAX_BUNDLE_ENTRIES", defaults.max_bundle_entries)
            ),
            export_dir=environ.get("CMIO_EXPORT_DIR", defaults.export_dir),
            validation=environ.get("CMIO_VALIDATION", defaults.validation),
            terminology_db=environ.get("CMIO_TERMINOLOGY_DB", defaults.terminology_db),
            hl7_journal=environ.get("CMIO_HL7_JOURNAL", defaults.hl7_journal),
            audit=environ.get("CMIO_AUDIT", "on").lower() != "off",
            auth=AuthSettings.from_environment(environ),
            hardening=HardeningPolicy.from_environment(environ),
            cds_clients=environ.get("CMIO_CDS_CLIENTS"),
            governance_approvers=environ.get("CMIO_GOVERNANCE_APPROVERS"),
            metrics=environ.get("CMIO_METRICS", "on").lower() != "off",
            metrics_token=environ.get("CMIO_METRICS_TOKEN") or None,
            metrics_role=environ.get("CMIO_METRICS_ROLE") or None,
            hl7_channels=environ.get("CMIO_HL7_CHANNELS") or None,
            audit_journal=environ.get("CMIO_AUDIT_JOURNAL", "on").lower() != "off",
            audit_loop_commit=environ.get("CMIO_AUDIT_LOOP_COMMIT", "off").lower() == "on",
        )


Validator = Callable[[dict[str, Any]], Sequence[Any]]


@dataclass(slots=True)
class Env:
    """The services one router works with (no globals: each server builds its own)."""

    repository: Repository
    model: Model
    validator: Validator
    settings: Settings = field(default_factory=Settings)
    exports: ExportJobs | None = None
    """Bulk Data ``$export`` jobs (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html); None disables $export."""
    profile_validator: ProfileValidator | None = None
    """Profile validation (``$validate``, ``Settings.validation``); built on first use."""
    terminology: TerminologyService | None = None
    """The terminology service (``$expand``, ``$validate-code`` ...); None: not offered."""
    reindexer: Any = None
    """The ``$reindex`` job runner (:class:`cmio.bulk.reindex.Reindexer`), made on first use."""
    auditor: Auditor | None = None
    """The audit trail (:class:`cmio.api.audit.Auditor`); None: interactions are not audited."""
    rules: Any = None
    """Data-quality rules checked on every write (:class:`cmio.rules.WriteRules`); None: none."""
    search_registry: Any = None
    """This process's custom SearchParameter registry
    (:class:`cmio.bulk.search_registry.SearchRegistry`), made on first use."""
