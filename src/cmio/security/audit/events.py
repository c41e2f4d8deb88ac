"""AuditEvents shaped like IHE Basic Audit Log Patterns (BALP).

One :class:`AuditFacts` (who, from where, what, on which patient, with which
outcome) becomes one FHIR R4 AuditEvent following the BALP RESTful profiles
(https://profiles.ihe.net/ITI/BALP/content.html#3571-basic-restful-interactions):
``type`` ``rest`` with the FHIR interaction as subtype, ``action`` C/R/U/D/E,
``recorded``, ``outcome`` 0/4/8/12, agents for the user (``requestor``, roles,
the token's ``jti`` in ``policy`` as in the OAuth access-token profiles), the
client application and the server, ``source.observer``, and entities for the
patient (role 1), the resource (role 4, versioned reference) and the query
(base64). Logins use DICOM 110114 "User Authenticated" (110122 Login / 110123
Logout). The agents and entities have the same shape as the synthetic health
system's (:mod:`cmio.synth.activity`), so the EHR-use metrics read both. The facts
and :func:`outcome_code` are in :mod:`cmio.security.audit.facts` (re-exported here).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cmio.security.audit.facts import AuditFacts, outcome_code
from cmio.security.audit.source import AuditSource
from cmio.security.grant import AccessGrant

__all__ = [
    "BALP",
    "BTG",
    "INTERACTION_ACTIONS",
    "AuditFacts",
    "AuditSource",
    "build_event",
    "event_agents",
    "event_entities",
    "event_head",
    "event_outcome_desc",
    "event_source",
    "outcome_code",
]

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
DCM = "http://dicom.nema.org/resources/ontology/DCM"
_REST_SYSTEM = "http://hl7.org/fhir/restful-interaction"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_AGENT_TYPES = "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_ENTITY_BALP = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
_ROLES = "https://cmio.dev/fhir/CodeSystem/role"
BTG = {"system": _ACT_REASON, "code": "BTG", "display": "break the glass"}
"""``purposeOfEvent`` of a break-the-glass access (v3-ActReason)."""

INTERACTION_ACTIONS: dict[str, str] = {
    "read": "R",
    "vread": "R",
    "search-type": "E",
    "search-system": "E",
    "search-compartment": "E",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "transaction": "E",
    "batch": "E",
    "operation": "E",
    "capabilities": "R",
    "login": "E",
    "logout": "E",
    "token": "E",
    "revoke": "E",
}
"""BALP ``action`` of each interaction (searches and operations are Execute)."""

# BALP profile of each action, plain and with a patient.
_PROFILES = {
    "C": ("Create", "PatientCreate"),
    "R": ("Read", "PatientRead"),
    "U": ("Update", "PatientUpdate"),
    "D": ("Delete", "PatientDelete"),
    "E": ("Query", "PatientQuery"),
}
_OUTCOME_DESC = {"0": None, "4": "minor failure", "8": "serious failure", "12": "major failure"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


_AUTH_SUBTYPES = {
    "login": _coding(DCM, "110122", "Login"),
    "logout": _coding(DCM, "110123", "Logout"),
    "token": _coding("urn:ihe:event-type-code", "ITI-71", "Get Access Token"),
    "revoke": _coding("urn:cmio:auth-event", "revoke", "Token revoked"),
}


def _user_agent(grant: AccessGrant | None) -> dict[str, Any]:
    """The requesting user (or backend client), BALP ``UserOauthAgent``."""
    if grant is None:
        who: dict[str, Any] = {"display": "in-process caller"}
    else:
        who = {"identifier": {"system": f"urn:cmio:{grant.kind}", "value": grant.subject}}
        if grant.fhir_user:
            who["reference"] = grant.fhir_user
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                _coding(_AGENT_TYPES, "UserOauthAgent", "User OAuth Agent participant"),
                _coding(_PARTICIPATION, "IRCP", "information recipient"),
            ]
        },
        "who": who,
        "requestor": True,
    }
    if grant is not None:
        if grant.roles:
            agent["role"] = [{"coding": [_coding(_ROLES, role)]} for role in sorted(grant.roles)]
        if grant.token_id:
            agent["policy"] = [f"urn:ietf:params:oauth:jti:{grant.token_id}"]
        if grant.break_glass is not None:
            agent["purposeOfUse"] = [{"coding": [BTG]}]
    return agent


def _client_agent(grant: AccessGrant | None, remote_addr: str | None) -> dict[str, Any]:
    """The client application (acting on behalf of the user when one is logged in)."""
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                _coding(_AGENT_TYPES, "ApplicationOauthAgent", "Application OAuth Agent"),
                _coding(DCM, "110153", "Source Role ID"),
            ]
        },
        "who": {
            "identifier": {
                "system": "urn:cmio:client",
                "value": (grant.client_id if grant and grant.client_id else "unknown"),
            }
        },
        "requestor": False,
    }
    if remote_addr:
        agent["network"] = {"address": remote_addr, "type": "2"}  # IP address
    return agent


def _server_agent(server: str) -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
        "who": {"identifier": {"system": "urn:cmio:server", "value": server}},
        "requestor": False,
        "network": {"address": server, "type": "5"},  # URI
    }


def _source_agent(source: AuditSource) -> dict[str, Any]:
    """A system acting on its own account (a Device-like requestor)."""
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
        "who": {
            "identifier": {"system": source.system, "value": source.value},
            "display": source.display,
        },
        "requestor": True,
    }
    if source.address:
        agent["network"] = {"address": source.address, "type": "2"}  # IP address
    return agent


def event_agents(facts: AuditFacts) -> list[dict[str, Any]]:
    """``AuditEvent.agent``: the client application, the server and the user; or a source
    system and the server (it depends only on grant, address, server and source)."""
    if facts.source is not None and facts.grant is None:
        return [_source_agent(facts.source), _server_agent(facts.server)]
    return [
        _client_agent(facts.grant, facts.remote_addr),
        _server_agent(facts.server),
        _user_agent(facts.grant),
    ]


def event_entities(facts: AuditFacts) -> list[dict[str, Any]]:
    """``AuditEvent.entity``: patients, resources, query, request id, job, break-the-glass."""
    entities: list[dict[str, Any]] = []
    if facts.patient:
        entities.append(
            {
                "what": {"reference": f"Patient/{facts.patient}"},
                "type": _coding(_ENTITY_TYPE, "1", "Person"),
                "role": _coding(_OBJECT_ROLE, "1", "Patient"),
            }
        )
    for patient in facts.patients:
        entities.append(
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": _coding(_ENTITY_TYPE, "1", "Person"),
                "role": _coding(_OBJECT_ROLE, "1", "Patient"),
            }
        )
    for ref in facts.resources:
        entities.append(
            {
                "what": {"reference": ref},
                "type": _coding(_ENTITY_TYPE, "2", "System Object"),
                "role": _coding(_OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    if facts.resource_type and facts.resource_id:
        ref = f"{facts.resource_type}/{facts.resource_id}"
        if facts.version is not None:
            ref += f"/_history/{facts.version}"
        entities.append(
            {
                "what": {"reference": ref},
                "type": _coding(_ENTITY_TYPE, "2", "System Object"),
                "role": _coding(_OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    if facts.query is not None:
        query: dict[str, Any] = {
            "type": _coding(_ENTITY_TYPE, "2", "System Object"),
            "role": _coding(_OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(facts.query.encode()).decode("ascii"),
        }
        if facts.resource_type and not facts.resource_id:
            query["description"] = facts.resource_type
        entities.append(query)
    if facts.correlation_id:
        entities.append(
            {
                "what": {"identifier": {"value": facts.correlation_id}},
                "type": _coding(_ENTITY_BALP, "XrequestId", "X-Request-Id"),
            }
        )
    source = facts.source
    if source is not None and source.message:
        entities.append(
            {
                "what": {"identifier": {"system": source.system, "value": source.message}},
                "type": _coding(_ENTITY_TYPE, "2", "System Object"),
                "description": source.display,
                "detail": [{"type": source.message_type, "valueString": source.message}],
            }
        )
    grant = facts.grant
    if grant is not None and grant.break_glass is not None:
        entities.append(
            {
                "type": _coding(_ENTITY_TYPE, "4", "Other"),
                "role": _coding(_OBJECT_ROLE, "13", "Security Resource"),
                "description": "break-the-glass",
                "detail": [{"type": "reason", "valueString": grant.break_glass}],
            }
        )
    return entities


def event_head(facts: AuditFacts) -> tuple[str, dict[str, str], list[dict[str, str]], str | None]:
    """The ``action``, ``type``, ``subtype`` and BALP profile (None: a login) of ``facts``;
    they depend only on the interaction, the operation and whether one patient is named."""
    action = INTERACTION_ACTIONS[facts.interaction]
    if facts.interaction in _AUTH_SUBTYPES:
        event_type = _coding(DCM, "110114", "User Authenticated")
        return action, event_type, [_AUTH_SUBTYPES[facts.interaction]], None
    event_type = _coding(
        "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"
    )
    subtype = [_coding(_REST_SYSTEM, facts.interaction, facts.interaction)]
    if facts.operation:
        subtype.append(_coding("urn:cmio:operation", facts.operation))
    plain, with_patient = _PROFILES[action]
    one_patient = bool(facts.patient) and not facts.patients
    return action, event_type, subtype, BALP + (with_patient if one_patient else plain)


def event_source(server: str) -> dict[str, Any]:
    """``AuditEvent.source`` of the server ``server`` (the observer)."""
    return {
        "observer": {"display": f"cmio {server}"},
        "type": [
            _coding(
                "http://terminology.hl7.org/CodeSystem/security-source-type",
                "4",
                "Application Server",
            )
        ],
    }


def event_outcome_desc(facts: AuditFacts) -> str | None:
    """``AuditEvent.outcomeDesc`` (at most 1,000 characters)."""
    desc = facts.outcome_desc or _OUTCOME_DESC.get(facts.outcome)
    return desc[:1000] if desc else None


def build_event(facts: AuditFacts) -> dict[str, Any]:
    """One BALP-shaped AuditEvent for ``facts``.

    See https://profiles.ihe.net/ITI/BALP/StructureDefinition-IHE.BasicAudit.PatientRead.html
    (and its Create/Update/Delete/Query siblings) and
    https://hl7.org/fhir/R4/auditevent.html.
    """
    action, event_type, subtype, profile = event_head(facts)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": facts.id or os.urandom(16).hex(),
        "type": event_type,
        "subtype": subtype,
        "action": action,
        "recorded": facts.recorded,
        "outcome": facts.outcome,
        "agent": event_agents(facts),
        "source": event_source(facts.server),
    }
    if profile is not None:
        event["meta"] = {"profile": [profile]}
    desc = event_outcome_desc(facts)
    if desc:
        event["outcomeDesc"] = desc
    if facts.grant is not None and facts.grant.break_glass is not None:
        event["purposeOfEvent"] = [{"coding": [BTG]}]
    entities = event_entities(facts)
    if entities:
        event["entity"] = entities
    return event
