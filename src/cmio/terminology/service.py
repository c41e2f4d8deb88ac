"""The terminology service: the provider behind the FHIR terminology operations.

https://hl7.org/fhir/R4/terminology-service.html. :class:`TerminologyService`
resolves value sets (by canonical URL, pinned ``url|version``, inline, or implicit
``fhir_vs`` URLs), expands them with a cache keyed by the resource's stored version,
and answers ``$expand``, ``$validate-code``, ``$lookup``, ``$subsumes`` and
``$translate`` (the last three in :mod:`cmio.terminology.lookup`). The protocol
adapters FHIRPath, validation and search call are in :mod:`cmio.terminology.providers`.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmio.terminology.answers import AnswerCache
from cmio.terminology.errors import TerminologyError
from cmio.terminology.expansion import Expander, ExpandOptions, Expansion, Member, iter_page
from cmio.terminology.render import expansion_properties, render_member, unclosed
from cmio.terminology.resources import TerminologyResources, split_canonical
from cmio.terminology.status_warnings import status_warnings
from cmio.terminology.stored import StoredCodeSystem
from cmio.terminology.supplements import requested_supplements, with_supplements
from cmio.terminology.version_rules import several_versions, with_alternates

__all__ = ["ExpandRequest", "TerminologyService", "implicit_valueset", "valueset_key"]

_FHIR_VS = "?fhir_vs"


def implicit_valueset(canonical: str) -> dict[str, Any] | None:
    """The ValueSet an implicit URL stands for, or None.

    ``[system]?fhir_vs`` is all of a code system, ``[system]?fhir_vs=isa/[code]`` its
    subsumption hierarchy below a code
    (https://hl7.org/fhir/R4/snomedct.html#implicit, https://hl7.org/fhir/R4/codesystem.html#implicit);
    ``http://loinc.org/vs`` is all of LOINC and ``http://loinc.org/vs/[part]`` the codes
    having that part (https://hl7.org/fhir/R4/loinc.html#implicit).
    """
    url, _ = split_canonical(canonical)
    include: dict[str, Any]
    if _FHIR_VS in url:
        system, _, query = url.partition("?")
        include = {"system": system}
        value = query.partition("=")[2]
        if value.startswith("isa/"):
            include["filter"] = [{"property": "concept", "op": "is-a", "value": value[4:]}]
        elif value.startswith("refset/"):
            include["filter"] = [{"property": "concept", "op": "in", "value": value[7:]}]
        elif value:
            return None
    elif url == "http://loinc.org/vs":
        include = {"system": "http://loinc.org"}
    elif url.startswith("http://loinc.org/vs/"):
        part = url.rsplit("/", 1)[1]
        include = {
            "system": "http://loinc.org",
            "filter": [
                {
                    "property": "parent" if part.startswith("LP") else "concept",
                    "op": "=" if part.startswith("LP") else "is-a",
                    "value": part,
                }
            ],
        }
    else:
        return None
    return {
        "resourceType": "ValueSet",
        "url": url,
        "status": "active",
        "compose": {"include": [include]},
    }


@dataclass(slots=True)
class ExpandRequest:
    """The parameters of one ``$expand`` (https://hl7.org/fhir/R4/valueset-operation-expand.html).

    Attributes:
        url: the value set's canonical URL (may carry ``|version``).
        valueset: an inline ValueSet (instead of ``url``).
        version: ``valueSetVersion``.
        filter: text filter on displays and codes.
        offset: first member returned.
        count: members returned (None: all, within the service's limit).
        include_designations: add designations to each member.
        include_definition: keep the value set's definition (``compose``) in the answer.
        exclude_nested: flat expansion (the service always answers flat).
        options: parameters that change the members.
        echo: ``(name, value-key, value)`` parameters to repeat in ``expansion.parameter``.
        supplements: ``useSupplement``: supplements to apply (with the value set's own,
            see :mod:`cmio.terminology.supplements`).
        designations: ``designation``: ``system|code`` tokens, a language
            (``urn:ietf:bcp:47|de``) or a use; only designations matching one are shown.
        properties: ``property`` (R5 ``$expand``): the concept properties to return with
            each member, as R4 cross-version extensions (:mod:`cmio.terminology.render`).
    """

    url: str | None = None
    valueset: dict[str, Any] | None = None
    version: str | None = None
    filter: str | None = None
    offset: int = 0
    count: int | None = None
    include_designations: bool = False
    include_definition: bool = False
    exclude_nested: bool = True
    options: ExpandOptions = field(default_factory=ExpandOptions)
    echo: list[tuple[str, str, Any]] = field(default_factory=list)
    supplements: list[str] = field(default_factory=list)
    designations: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)


class TerminologyService:
    """The terminology provider.

    Args:
        resources: the CodeSystem/ValueSet/ConceptMap resources and the concept store.
        max_expansion: an expansion larger than this without ``count`` is refused as
            too costly (never silently cut).
        cache_size: expansions kept (least recently used are dropped).
    """

    def __init__(
        self, resources: TerminologyResources, max_expansion: int = 10_000, cache_size: int = 512
    ) -> None:
        self.resources = resources
        self.max_expansion = max_expansion
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], Expansion] = OrderedDict()
        self._lock = threading.Lock()
        self.answers = AnswerCache()
        """Whole ``$validate-code`` answers, reused for a second (see :mod:`.answers`)."""

    def close(self) -> None:
        """Close the concept store, if any."""
        if self.resources.concepts is not None:
            self.resources.concepts.close()

    # -- value sets ---------------------------------------------------------------

    def find_valueset(
        self,
        canonical: str,
        version: str | None = None,
        resources: TerminologyResources | None = None,
    ) -> dict[str, Any]:
        """The ValueSet a canonical URL names (stored, core or implicit).

        Raises:
            TerminologyError: 404 when there is none.
        """
        resources = resources or self.resources
        url, pinned = split_canonical(canonical)
        found = resources.find("ValueSet", url, version or pinned)
        if found is None:
            found = implicit_valueset(url)
        if found is None:
            wanted = version or pinned
            label = f"{url}|{wanted}" if wanted else url
            raise TerminologyError(
                404,
                "not-found",
                f"A definition for the value Set '{label}' could not be found",
                detail="not-found",
            )
        return found

    def expansion(
        self,
        valueset: dict[str, Any],
        options: ExpandOptions | None = None,
        resources: TerminologyResources | None = None,
    ) -> Expansion:
        """The members of a value set, cached by the resource's stored version and options."""
        options = options or ExpandOptions()
        resources = resources or self.resources
        key = _cache_key(valueset, resources)
        if key is None:
            return Expander(resources, options).expand(valueset)
        key = (*key, options.key(), resources.generation)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        result = Expander(resources, options).expand(valueset)
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def expand(
        self, request: ExpandRequest, resources: TerminologyResources | None = None
    ) -> dict[str, Any]:
        """``$expand``: the ValueSet with an ``expansion`` (one page of members).

        See https://hl7.org/fhir/R4/valueset-operation-expand.html.

        Raises:
            TerminologyError: unknown value set or code system, bad filter, or an
                expansion larger than ``max_expansion`` asked for without ``count``.
        """
        resources = resources or self.resources
        if request.valueset is not None:
            valueset = request.valueset
        elif request.url:
            valueset = self.find_valueset(request.url, request.version, resources)
        else:
            raise TerminologyError(
                400, "required", "$expand needs a url or a valueSet", expression="url"
            )
        wanted = requested_supplements(valueset, request.supplements)
        resources, supplemented = with_supplements(resources, wanted)
        paged = _stored_isa_page(valueset, request, resources)
        if paged is not None:  # one is-a filter on the concept store: page in SQL
            result, total, page = paged
        else:
            result = self.expansion(valueset, request.options, resources)
            members: Mapping[tuple[str, str], Member] = result.members
            if result.alternates:  # an overloaded value set: each version's member, newest first
                members = with_alternates(result)
            if request.filter:
                members = _text_filter(members, request.filter)
            total = len(members)
            page = list(iter_page(members, request.offset, request.count))
        if request.count is None and total - request.offset > self.max_expansion:
            raise TerminologyError(
                422,
                "too-costly",
                f"The value set '{valueset.get('url')}' expansion has {total} concepts, more "
                f"than the limit of {self.max_expansion}; page it with count and offset",
            )
        _prefetch(page)
        language = request.options.display_language
        if language is None:  # the value set's expansion parameter, else its own language
            language = _compose_parameter(valueset, "displayLanguage") or valueset.get("language")
            if isinstance(language, str):
                request.echo.append(("displayLanguage", "valueCode", language))
            else:
                language = None
        systems = [u.partition("|")[0] for n, u in result.used if n == "used-codesystem"]
        versioned = len(systems) != len(set(systems)) or several_versions(valueset)
        contains = [render_member(m, request, language, versioned) for m in page]
        parameters: list[dict[str, Any]] = [
            {"name": name, key: value}
            for name, key, value in sorted(request.echo, key=lambda item: item[0])
        ]
        parameters += [{"name": name, "valueUri": value} for name, value in result.used]
        parameters += [{"name": "used-supplement", "valueUri": u} for u in supplemented]
        parameters += status_warnings(valueset, result.used, resources)
        expansion: dict[str, Any] = {
            "identifier": f"urn:uuid:{uuid.uuid4()}",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "total": total,
        }
        if request.offset or any(item[0] == "offset" for item in request.echo):  # paged
            expansion["offset"] = request.offset
        if parameters:
            expansion["parameter"] = parameters
        declared = unclosed(result.used, resources)
        if request.properties or any("extension" in row for row in contains):
            declared += expansion_properties(request.properties, page)  # asked for or stated
        if declared:
            expansion["extension"] = declared
        if contains:
            expansion["contains"] = contains
        # compose is left out unless asked for: the expansion is the answer (and stays small)
        dropped = ("expansion", "text", "meta") + (
            () if request.include_definition else ("compose",)
        )
        out = {k: v for k, v in valueset.items() if k not in dropped}
        out["expansion"] = expansion
        return out


def _stored_isa_page(
    valueset: dict[str, Any], request: ExpandRequest, resources: TerminologyResources
) -> tuple[Expansion, int, list[Member]] | None:
    """An intensional ``is-a`` value set over a concept-store system, paged by the store
    (``count``/``offset`` and the closure in SQL, no full member list); None otherwise."""
    compose = valueset.get("compose")
    if request.count is None or request.filter or not isinstance(compose, dict):
        return None
    includes: list[Any] = compose.get("include") or []
    if compose.get("exclude") or len(includes) != 1 or set(includes[0]) != {"system", "filter"}:
        return None
    filters = includes[0]["filter"]
    if len(filters) != 1 or filters[0].get("op") != "is-a":
        return None
    if filters[0].get("property") not in ("concept", "code"):
        return None
    options = request.options
    if options.system_versions or options.force_versions or options.exclude_systems:
        return None
    source = resources.code_system(includes[0]["system"])
    if not isinstance(source, StoredCodeSystem):
        return None
    if options.active_only or compose.get("inactive") is False:
        return None
    url, version, top = source.url, source.version, str(filters[0].get("value"))
    if source.get(top) is None:
        return None
    full = bool(
        request.include_designations
        or request.properties
        or options.display_language
        or isinstance(valueset.get("language"), str)
    )
    total, entries = source.page_under(top, request.offset, request.count, full)
    page = [Member(url, version, e.code, source, _entry=e) for e in entries]
    used = [("used-codesystem", f"{url}|{version}" if version else url)]
    return Expansion(valueset, {}, used), total, page


_EXPANSION_PARAMETER = "http://hl7.org/fhir/StructureDefinition/valueset-expansion-parameter"


def _compose_parameter(valueset: dict[str, Any], name: str) -> Any:
    """A ``valueset-expansion-parameter`` the value set's compose gives for ``name``
    (https://hl7.org/fhir/extensions/StructureDefinition-valueset-expansion-parameter.html)."""
    compose = valueset.get("compose")
    for extension in compose.get("extension") or () if isinstance(compose, dict) else ():
        if not isinstance(extension, dict) or extension.get("url") != _EXPANSION_PARAMETER:
            continue
        parts = {
            e.get("url"): next((v for k, v in e.items() if k.startswith("value")), None)
            for e in extension.get("extension") or ()
            if isinstance(e, dict)
        }
        if parts.get("name") == name:
            return parts.get("value")
    return None


def _prefetch(members: list[Member]) -> None:
    """Decode the page's concepts in a few queries when they come from the concept store."""
    by_source: dict[int, tuple[Any, list[str]]] = {}
    for member in members:
        prefetch = getattr(member.source, "prefetch", None)
        if prefetch is not None and member._entry is None:
            by_source.setdefault(id(member.source), (prefetch, []))[1].append(member.code)
    for prefetch, codes in by_source.values():
        prefetch(codes)


def valueset_key(
    valueset: dict[str, Any], resources: TerminologyResources
) -> tuple[Any, ...] | None:
    """What identifies a value set's content for caching (None: not cacheable)."""
    return _cache_key(valueset, resources)


def _cache_key(valueset: dict[str, Any], resources: TerminologyResources) -> tuple[Any, ...] | None:
    if resources.overlay:
        return None
    meta = valueset.get("meta") or {}
    if "id" in valueset and "versionId" in meta:
        return ("r", valueset["id"], meta["versionId"], valueset.get("url"))
    if (
        "id" not in valueset
        and _FHIR_VS not in str(valueset.get("url"))
        and not str(valueset.get("url", "")).startswith("http://loinc.org/vs")
    ):
        return None  # an inline value set: not cached
    return ("u", valueset.get("url"), valueset.get("version"))


def _text_filter(
    members: Mapping[tuple[str, str], Member], text: str
) -> dict[tuple[str, str], Member]:
    words = [w for w in text.lower().split() if w]
    out: dict[tuple[str, str], Member] = {}
    for key, member in members.items():
        entry = member.entry()
        display = (member.display or (entry.display if entry else None) or "").lower()
        tokens = display.replace("-", " ").replace(",", " ").split()
        code = member.code.lower()
        if all(code.startswith(w) or any(t.startswith(w) for t in tokens) for w in words):
            out[key] = member
    return out
