"""The CDS Hooks 2.0 JSON shapes (https://cds-hooks.hl7.org/2.0/), as small checkers.

Each checker returns the list of problems (empty: conforms). Field names, types,
required-ness and code lists are transcribed from the specification.
"""

from __future__ import annotations

from typing import Any

HOOK_CONTEXT = {
    "patient-view": {"userId": str, "patientId": str},
    "order-select": {"userId": str, "patientId": str, "selections": list, "draftOrders": dict},
    "order-sign": {"userId": str, "patientId": str, "draftOrders": dict},
}


def _need(obj: Any, name: str, kind: type, where: str, problems: list[str]) -> None:
    if not isinstance(obj, dict) or name not in obj:
        problems.append(f"{where}.{name} is required")
    elif not isinstance(obj[name], kind):
        problems.append(f"{where}.{name} must be {kind.__name__}")


def _may(obj: dict[str, Any], name: str, kind: type, where: str, problems: list[str]) -> None:
    if name in obj and not isinstance(obj[name], kind):
        problems.append(f"{where}.{name} must be {kind.__name__}")


def check_discovery(body: Any) -> list[str]:
    """Discovery response: ``services`` of hook/title?/description/id/prefetch?/usageRequirements?."""
    problems: list[str] = []
    _need(body, "services", list, "$", problems)
    for n, service in enumerate(body.get("services", []) if isinstance(body, dict) else []):
        where = f"services[{n}]"
        for name in ("hook", "description", "id"):
            _need(service, name, str, where, problems)
        _may(service, "title", str, where, problems)
        _may(service, "usageRequirements", str, where, problems)
        prefetch = service.get("prefetch", {})
        if not isinstance(prefetch, dict) or not all(isinstance(v, str) for v in prefetch.values()):
            problems.append(f"{where}.prefetch must map keys to strings")
    return problems


def check_request(body: Any) -> list[str]:
    """Hook request: hook, hookInstance, fhirServer?, fhirAuthorization?, context, prefetch?."""
    problems: list[str] = []
    for name in ("hook", "hookInstance"):
        _need(body, name, str, "$", problems)
    _need(body, "context", dict, "$", problems)
    if problems:
        return problems
    for name, kind in HOOK_CONTEXT.get(body["hook"], {}).items():
        _need(body["context"], name, kind, "context", problems)
    auth = body.get("fhirAuthorization")
    if auth is not None:
        for name in ("access_token", "token_type", "scope", "subject"):
            _need(auth, name, str, "fhirAuthorization", problems)
        _need(auth, "expires_in", int, "fhirAuthorization", problems)
        if auth.get("token_type") != "Bearer":
            problems.append("fhirAuthorization.token_type must be Bearer")
        if "fhirServer" not in body:
            problems.append("fhirServer is required with fhirAuthorization")
    _may(body, "prefetch", dict, "$", problems)
    return problems


def _check_coding(coding: Any, where: str, problems: list[str]) -> None:
    _need(coding, "code", str, where, problems)
    _need(coding, "system", str, where, problems)
    if isinstance(coding, dict):
        _may(coding, "display", str, where, problems)


def check_card(card: Any, where: str = "card") -> list[str]:
    """One card (spec "Card Attributes")."""
    problems: list[str] = []
    _may(card, "uuid", str, where, problems)
    _need(card, "summary", str, where, problems)
    _need(card, "indicator", str, where, problems)
    _need(card, "source", dict, where, problems)
    if problems:
        return problems
    if len(card["summary"]) > 140:
        problems.append(f"{where}.summary is longer than 140 characters")
    if card["indicator"] not in ("info", "warning", "critical"):
        problems.append(f"{where}.indicator must be info, warning or critical")
    _need(card["source"], "label", str, f"{where}.source", problems)
    for name in ("url", "icon"):
        _may(card["source"], name, str, f"{where}.source", problems)
    if "topic" in card["source"]:
        _check_coding(card["source"]["topic"], f"{where}.source.topic", problems)
    _may(card, "detail", str, where, problems)
    for n, suggestion in enumerate(card.get("suggestions", [])):
        at = f"{where}.suggestions[{n}]"
        _need(suggestion, "label", str, at, problems)
        _may(suggestion, "uuid", str, at, problems)
        _may(suggestion, "isRecommended", bool, at, problems)
        for m, act in enumerate(suggestion.get("actions", [])):
            here = f"{at}.actions[{m}]"
            _need(act, "type", str, here, problems)
            kind = act.get("type")
            if kind not in ("create", "update", "delete"):
                problems.append(f"{here}.type must be create, update or delete")
            if kind in ("create", "update"):
                _need(act, "resource", dict, here, problems)
            if kind == "delete":
                _need(act, "resourceId", list, here, problems)
    if card.get("suggestions"):
        _need(card, "selectionBehavior", str, where, problems)
        if card.get("selectionBehavior") not in ("at-most-one", "any"):
            problems.append(f"{where}.selectionBehavior must be at-most-one or any")
    for n, reason in enumerate(card.get("overrideReasons", [])):
        _check_coding(reason, f"{where}.overrideReasons[{n}]", problems)
    for n, link in enumerate(card.get("links", [])):
        at = f"{where}.links[{n}]"
        for name in ("label", "url", "type"):
            _need(link, name, str, at, problems)
        if link.get("type") not in ("absolute", "smart"):
            problems.append(f"{at}.type must be absolute or smart")
        if link.get("type") == "absolute" and not str(link.get("url", "")).startswith("http"):
            problems.append(f"{at}.url must be absolute")
    return problems


def check_response(body: Any) -> list[str]:
    """Hook response: ``cards`` (required, may be empty), ``systemActions``?."""
    problems: list[str] = []
    _need(body, "cards", list, "$", problems)
    for n, card in enumerate(body.get("cards", []) if isinstance(body, dict) else []):
        problems += check_card(card, f"cards[{n}]")
    _may(body, "systemActions", list, "$", problems)
    return problems


# Examples transcribed from the specification (facts).
SPEC_DISCOVERY = {
    "services": [
        {
            "hook": "patient-view",
            "title": "Static CDS Service Example",
            "description": "An example of a CDS Service that returns a card with SMART app recommendations.",
            "id": "static-patient-view",
            "prefetch": {"patientToGreet": "Patient/{{context.patientId}}"},
        }
    ]
}
SPEC_REQUEST = {
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "fhirServer": "http://hooks.smarthealthit.org:9080",
    "hook": "patient-view",
    "fhirAuthorization": {
        "access_token": "some-opaque-fhir-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read user/Observation.read",
        "subject": "cds-service4",
    },
    "context": {"userId": "Practitioner/example", "patientId": "1288992", "encounterId": "89284"},
    "prefetch": {
        "patientToGreet": {
            "resourceType": "Patient",
            "gender": "male",
            "birthDate": "1925-12-23",
            "id": "1288992",
            "active": True,
        }
    },
}
SPEC_RESPONSE = {
    "cards": [
        {
            "uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "summary": "Example Card",
            "indicator": "info",
            "detail": "This is an example card.",
            "source": {
                "label": "Static CDS Service Example",
                "url": "https://example.com",
                "icon": "https://example.com/img/icon-100px.png",
            },
            "links": [
                {"label": "Google", "url": "https://google.com", "type": "absolute"},
                {"label": "Github", "url": "https://github.com", "type": "absolute"},
                {
                    "label": "SMART Example App",
                    "url": "https://smart.example.com/launch",
                    "type": "smart",
                    "appContext": '{"session":3456356,"settings":{"module":4235}}',
                },
            ],
        }
    ]
}
SPEC_FEEDBACK = {
    "feedback": [
        {
            "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
            "outcomeTimestamp": "2020-12-11T00:00:00Z",
        }
    ]
}
SPEC_OVERRIDE = {
    "feedback": [
        {
            "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {
                    "code": "reason-code-provided-by-service",
                    "system": "http://example.org/cds-services/fhir/CodeSystem/override-reasons",
                },
                "userComment": "Clinician added some free text comment here",
            },
            "outcomeTimestamp": "2020-12-11T00:00:00Z",
        }
    ]
}
