"""Parse, validate and prepare import inputs; runs in worker processes or inline.

A :class:`ChunkParser` turns one :class:`~cmio.bulk.sources.Task` into a
:class:`ChunkResult`: resources ready to store (a JSON array, so the writer
decodes a whole block in one call), resources whose conditional references
could not be resolved yet (retried by the writer at the end of the run) and
rejected resources with their issues.

Bundles (https://hl7.org/fhir/R4/bundle.html#references): an entry whose
``fullUrl`` is ``urn:uuid:X`` keeps id X and references to it become
``Type/X``; conditional references (``Type?identifier=s|v``,
https://hl7.org/fhir/R4/http.html#trules) are resolved against the store.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cmio.api.env import ID_RE
from cmio.api.references import rewrite_references, walk_references
from cmio.bulk.report import Problem, Rejected
from cmio.bulk.sources import TRUNCATED, Task
from cmio.store.base import TableRows

__all__ = [
    "ChunkParser",
    "ChunkResult",
    "Deferred",
    "ResolveError",
    "Resolver",
    "conditional_references",
    "derived_id",
    "reference_path",
]

Json = dict[str, Any]
Validator = Callable[[Json], Sequence[Any]]
Resolver = Callable[[str], "str | None"]
_ERRORS = frozenset({"error", "fatal"})
_COND = re.compile(rb'"reference"\s*:\s*"[A-Z][A-Za-z]*\?')
_REF_VALUE = re.compile(rb'("reference"\s*:\s*")((?:[^"\\]|\\.)*)"')
_COND_VALUE = re.compile(rb'("reference"\s*:\s*")([A-Z][A-Za-z]*\?(?:[^"\\]|\\.)*)"')
_ID_NAMESPACE = uuid.UUID("9a4bf2e3-55c4-4c8a-9f3c-0c6d3f1b2a10")


class ResolveError(Exception):
    """A conditional reference that can never resolve (invalid or ambiguous)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Deferred:
    """A valid resource waiting for conditional references to become resolvable."""

    data: bytes
    file: str
    line: int | None
    entry: int | None


@dataclass(slots=True)
class ChunkResult:
    """What a parser made of one task.

    Attributes:
        seq: the task's sequence number.
        ready: JSON array of resources ready to store.
        count: number of resources in ``ready``.
        index: the search-index rows of each resource in ``ready`` (when the parser
            has an indexer), for ``Transaction.put_many``.
        deferred: resources with unresolved conditional references.
        rejected: invalid resources.
        matched: per type, Bundle entries whose ``ifNoneExist`` matched a stored resource.
        progress: input bytes the task accounted for.
        error: a worker crash (traceback text); the run fails with it.
    """

    seq: int
    ready: bytes = b"[]"
    count: int = 0
    index: list[TableRows] | None = None
    deferred: list[Deferred] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    matched: dict[str, int] = field(default_factory=dict)
    progress: int = 0
    error: str | None = None


def derived_id(resource: Json) -> str:
    """A stable id for a resource that has none: a UUID 5 of its canonical JSON."""
    return str(uuid.uuid5(_ID_NAMESPACE, orjson.dumps(resource, option=orjson.OPT_SORT_KEYS).hex()))


def reference_path(resource: Json, target: str) -> str | None:
    """The FHIRPath-like location of the first ``reference`` equal to ``target``."""

    def walk(node: Any, path: str, depth: int) -> str | None:
        if depth > 100:
            return None
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and value == target:
                    return f"{path}.reference"
                if isinstance(value, (dict, list)):
                    found = walk(value, f"{path}.{key}", depth + 1)
                    if found:
                        return found
        elif isinstance(node, list):
            for i, item in enumerate(node):
                found = walk(item, f"{path}[{i}]", depth + 1)
                if found:
                    return found
        return None

    return walk(resource, str(resource.get("resourceType", "Resource")), 0)


class ChunkParser:
    """Parses tasks with one model, validator and conditional-reference resolver.

    Args:
        resource_types: the concrete resource type names.
        validator: structural validation (``cmio.validation.validate_structure``
            bound to the model); issues with severity error/fatal reject.
        resolver: resolves ``Type?query`` to ``Type/id`` (None: not found yet) or
            raises :class:`ResolveError`; None defers every conditional reference.
        indexer: when given, extracts each ready resource's search-index rows here
            (in the worker process) so the single writer only inserts them.
    """

    def __init__(
        self,
        resource_types: frozenset[str],
        validator: Validator,
        resolver: Resolver | None,
        indexer: Callable[[Json], TableRows] | None = None,
    ) -> None:
        self.resource_types = resource_types
        self.validator = validator
        self.resolver = resolver
        self.indexer = indexer

    def finish(self, result: ChunkResult, ready: list[tuple[bytes, Json | None]]) -> None:
        """Set ``result.ready`` (and ``result.index`` when indexing) from the resources
        ready to store: each as its JSON and, if still equal to it, its parsed form."""
        result.ready = b"[" + b",".join(data for data, _ in ready) + b"]"
        result.count = len(ready)
        if self.indexer is not None:
            indexer, loads = self.indexer, orjson.loads
            result.index = [
                indexer(parsed if parsed is not None else loads(data)) for data, parsed in ready
            ]

    def run(self, task: Task) -> ChunkResult:
        """Parse one task."""
        if task.kind == "bundle":
            from cmio.bulk.bundles import parse_bundle

            return parse_bundle(self, task)
        data = task.data
        if data is None:
            with open(task.path, "rb") as fh:
                fh.seek(task.offset)
                data = fh.read(task.length)
        return self._ndjson(task, data)

    # -- shared steps ---------------------------------------------------------------------

    def check(self, resource: Any) -> tuple[str | None, str | None, list[Problem]]:
        """(type, id, problems) for a parsed JSON value; fills a missing id."""
        if not isinstance(resource, dict):
            return (
                None,
                None,
                [Problem("error", "structure", "expected a JSON object (a FHIR resource)")],
            )
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or rtype not in self.resource_types:
            shown = rtype if isinstance(rtype, str) else None
            return (
                shown,
                None,
                [Problem("error", "structure", f"unknown resourceType {rtype!r}", "resourceType")],
            )
        rid = resource.get("id")
        if rid is None:
            rid = resource["id"] = derived_id(resource)
        elif not isinstance(rid, str) or not ID_RE.fullmatch(rid):
            return rtype, None, [Problem("error", "value", f"invalid id {rid!r}", f"{rtype}.id")]
        issues = self.validator(resource)
        problems = [
            Problem(i.severity, i.code, i.message, i.expression)
            for i in issues
            if getattr(i, "severity", "error") in _ERRORS
        ]
        return rtype, rid, problems

    def rewrite(self, resource: Json, mapping: dict[str, str]) -> tuple[bool, list[Problem]]:
        """Rewrite references in place (fullUrls via ``mapping``, conditional ones via the resolver).

        Returns:
            ``(pending, problems)``: whether some conditional reference is not
            resolvable yet, and problems for the ones that never will be.
        """
        pending = False
        failed: list[tuple[str, ResolveError]] = []

        def conditional(ref: str) -> str:
            nonlocal pending
            if self.resolver is None:
                pending = True
                return ref
            try:
                hit = self.resolver(ref)
            except ResolveError as exc:
                failed.append((ref, exc))
                return ref
            if hit is None:
                pending = True
                return ref
            return hit

        rewrite_references(resource, mapping, conditional)
        problems = [
            Problem("error", exc.code, str(exc), reference_path(resource, ref))
            for ref, exc in failed
        ]
        return pending, problems

    def rewrite_bytes(
        self, data: bytes, resource: Json, mapping: dict[str, str] | None = None
    ) -> tuple[bytes, bool, list[Problem]]:
        """Rewrite references in a serialized resource without re-encoding it.

        Same rule as :func:`~cmio.api.references.walk_references` (every
        ``"reference"`` property), done on the JSON bytes, which costs a fraction
        of walking the parsed resource. Without ``mapping`` only conditional
        references are looked at; with it, every reference found in ``mapping``
        is replaced and a leftover ``urn:`` reference is a problem.

        Args:
            data: the resource serialized as JSON.
            resource: the same resource parsed (used to locate problems).
            mapping: fullUrl -> ``Type/id`` for Bundle entries.

        Returns:
            ``(data, pending, problems)`` as for :meth:`rewrite`.
        """
        pending = False
        failed: list[tuple[str, ResolveError]] = []
        dangling: list[str] = []
        resolver = self.resolver

        def replace(match: re.Match[bytes]) -> bytes:
            nonlocal pending
            raw = match.group(2)
            ref: str = orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
            hit = mapping.get(ref) if mapping is not None else None
            if hit is None:
                if ref.startswith("urn:"):
                    dangling.append(ref)
                    return match.group(0)
                if "?" not in ref or ref.startswith(("http:", "https:", "#")):
                    return match.group(0)
                if resolver is None:
                    pending = True
                    return match.group(0)
                try:
                    hit = resolver(ref)
                except ResolveError as exc:
                    failed.append((ref, exc))
                    return match.group(0)
                if hit is None:
                    pending = True
                    return match.group(0)
            return match.group(1) + orjson.dumps(hit)[1:-1] + b'"'

        out = (_COND_VALUE if mapping is None else _REF_VALUE).sub(replace, data)
        problems = [
            Problem("error", exc.code, str(exc), reference_path(resource, ref))
            for ref, exc in failed
        ]
        problems.extend(
            Problem(
                "error",
                "not-found",
                f"reference {ref!r} matches no fullUrl in the Bundle",
                reference_path(resource, ref),
            )
            for ref in dangling
        )
        return out, pending, problems

    # -- NDJSON ---------------------------------------------------------------------------

    def _ndjson(self, task: Task, data: bytes) -> ChunkResult:
        result = ChunkResult(task.seq, progress=task.progress)
        ready: list[tuple[bytes, Json | None]] = []
        loads, dumps, cond = orjson.loads, orjson.dumps, _COND.search
        for offset, raw in enumerate(data.split(b"\n")):
            line = raw.strip()
            if not line:
                continue
            if line[0] == 0xEF and line.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
                line = line[3:]
            lineno = task.first_line + offset
            try:
                resource = loads(line)
            except orjson.JSONDecodeError as exc:
                problem = (
                    line[1:].decode().strip() if line == TRUNCATED else f"malformed JSON: {exc}"
                )
                result.rejected.append(
                    Rejected(
                        task.label,
                        lineno,
                        None,
                        None,
                        None,
                        (Problem("error", "structure", problem),),
                    )
                )
                continue
            had_id = isinstance(resource, dict) and "id" in resource
            rtype, rid, problems = self.check(resource)
            out = line if had_id else dumps(resource)
            parsed: Json | None = resource
            if not problems and cond(out):
                out, pending, problems = self.rewrite_bytes(out, resource)
                parsed = None  # references rewritten in ``out`` only
                if pending and not problems:
                    result.deferred.append(Deferred(out, task.label, lineno, None))
                    continue
            if problems:
                result.rejected.append(
                    Rejected(task.label, lineno, None, rtype, rid, tuple(problems))
                )
                continue
            ready.append((out, parsed))
        self.finish(result, ready)
        return result


def conditional_references(resource: Json) -> list[str]:
    """The conditional references (``Type?query``) left in a resource."""
    found: list[str] = []

    def visit(ref: str) -> None:
        if "?" in ref and not ref.startswith(("http:", "https:", "urn:", "#")):
            found.append(ref)

    walk_references(resource, visit)
    return found
