"""Status warnings of an expansion: draft, experimental, deprecated, withdrawn content.

R5 ``$expand`` answers carry ``warning-draft``, ``warning-experimental``,
``warning-deprecated`` and ``warning-withdrawn`` parameters naming the code systems and
value sets used that are in such a state
(https://hl7.org/fhir/R5/valueset-operation-expand.html; the standards status is the
``structuredefinition-standards-status`` extension,
https://hl7.org/fhir/R4/extension-structuredefinition-standards-status.html).
"""

from __future__ import annotations

from typing import Any

from cmio.terminology.resources import TerminologyResources

__all__ = ["status_warnings"]

_STANDARDS_STATUS = "http://hl7.org/fhir/StructureDefinition/structuredefinition-standards-status"


def status_warnings(
    valueset: dict[str, Any], used: list[tuple[str, str]], resources: TerminologyResources
) -> list[dict[str, Any]]:
    """``warning-draft|experimental|deprecated|withdrawn`` for the code systems and value
    sets an expansion used, then the value set itself (the R5 expansion parameters,
    https://hl7.org/fhir/R5/valueset-operation-expand.html)."""
    found: list[dict[str, Any] | None] = []
    for name, canonical in used:
        if name in ("used-codesystem", "used-valueset"):
            rtype = "CodeSystem" if name == "used-codesystem" else "ValueSet"
            found.append(resources.find(rtype, canonical))
    found.append(valueset)  # itself: only its standards status (a draft asks for itself)
    out: list[dict[str, Any]] = []
    for index, resource in enumerate(found):
        if resource is None:
            continue
        url, version = resource.get("url"), resource.get("version")
        if not isinstance(url, str):
            continue
        label = f"{url}|{version}" if version else url
        kinds = []
        if resource.get("status") == "draft" and index < len(found) - 1:
            kinds.append("draft")
        if resource.get("experimental") is True and index < len(found) - 1:
            kinds.append("experimental")
        for extension in resource.get("extension") or ():
            if (
                isinstance(extension, dict)
                and extension.get("url") == _STANDARDS_STATUS
                and extension.get("valueCode") in ("deprecated", "withdrawn")
            ):
                kinds.append(str(extension["valueCode"]))
        warning = [{"name": f"warning-{k}", "valueUri": label} for k in kinds]
        out += [w for w in warning if w not in out]
    return out
