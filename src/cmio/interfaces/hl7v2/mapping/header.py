"""MSH to MessageHeader and MSH/EVN to Provenance (opt-in: ``MappingOptions.provenance``).

Segment maps MSH[MessageHeader] and EVN[Provenance] of the HL7 V2-to-FHIR IG
(https://build.fhir.org/ig/HL7/v2-to-fhir/ ), reduced to what FHIR R4 requires and v2
messages carry: MSH-9 -> eventCoding (table 0003), MSH-3/MSH-24 -> source, MSH-5/MSH-25 ->
destination, MSH-4 -> sender, the Bundle's resources -> focus; EVN-2 (else MSH-7) ->
recorded, EVN-6 -> occurredDateTime, EVN-4 -> reason, EVN-5 -> agent (enterer), the sending
application -> agent (author) when EVN-5 is empty. HD values are written as logical
references (identifier + display), not as Organization/Device resources. MessageHeader and
Provenance have no identifier in R4: their ids derive from the sender and MSH-10 control id,
so a resent message rewrites them instead of adding new ones.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from cmio.interfaces.hl7v2.fields import Repetition
from cmio.interfaces.hl7v2.mapping.context import MapContext
from cmio.interfaces.hl7v2.mapping.datatypes import (
    authority_system,
    codeable,
    practitioner,
    v2_table_system,
)
from cmio.interfaces.hl7v2.mapping.values import datetime, instant

__all__ = ["message_header_and_provenance"]

_IDS = uuid.UUID("0b7f64a4-5c2e-4c55-b1f6-3e9a4d1f2c80")
_URI_SAFE = ":/?#[]@!$&'()*+,;=._~-%"
_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def _hd_text(rep: Repetition) -> str:
    return rep.get(1) or rep.get(2) if rep else ""


def _endpoint(ctx: MapContext, rep: Repetition, address: str) -> str:
    """An endpoint URI: the network address (MSH-24/25), the HD universal id, or a URN.

    Characters not allowed in a URI (spaces, ``|``, ``^``...) are percent-encoded.
    """
    if address:
        uri = address if ":" in address else f"urn:cmio:v2:endpoint:{address}"
    elif rep and rep.get(2):
        uri = authority_system(ctx, rep.get(1), rep.get(2), rep.get(3))
    else:
        uri = f"urn:cmio:v2:application:{_hd_text(rep) or 'unknown'}"
    return quote(uri, safe=_URI_SAFE)


def _logical(ctx: MapContext, rep: Repetition) -> dict[str, Any] | None:
    """HD -> a logical Reference (identifier system from the HD, value its namespace)."""
    text = _hd_text(rep)
    if not text:
        return None
    system = authority_system(ctx, "", rep.get(2), rep.get(3)) if rep.get(2) else ""
    ident = {"system": system, "value": text} if system else {"value": text}
    return {"identifier": ident, "display": text}


def message_header_and_provenance(ctx: MapContext) -> None:
    """Add a MessageHeader (MSH) and a Provenance (MSH + EVN) for the mapped resources.

    Call after the message's resources are in ``ctx.entries``: both point at them
    (MessageHeader.focus, Provenance.target).

    See https://build.fhir.org/ig/HL7/v2-to-fhir/ (segment maps MSH[MessageHeader],
    EVN[Provenance]) and https://hl7.org/fhir/R4/messageheader.html ,
    https://hl7.org/fhir/R4/provenance.html .
    """
    message = ctx.message
    msh = message.segment("MSH")
    if msh is None:
        return
    targets = [{"reference": e["fullUrl"]} for e in ctx.entries]
    mtype = message.message_type
    seed = f"{message.sending_application}|{message.sending_facility}|{message.control_id}"
    event = {
        "system": v2_table_system("0003"),
        "code": mtype.event or mtype.code,
        "display": f"{mtype.code}^{mtype.event}",
    }
    sending_app, receiving_app = msh.field(3).repetition(1), msh.field(5).repetition(1)
    source: dict[str, Any] = {"endpoint": _endpoint(ctx, sending_app, msh.get(24))}
    if _hd_text(sending_app):
        source["name"] = _hd_text(sending_app)
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "eventCoding": event,
        "source": source,
    }
    if receiving_app or msh.get(25):
        destination: dict[str, Any] = {"endpoint": _endpoint(ctx, receiving_app, msh.get(25))}
        if _hd_text(receiving_app):
            destination["name"] = _hd_text(receiving_app)
        receiver = _logical(ctx, msh.field(6).repetition(1))
        if receiver:
            destination["receiver"] = receiver
        header["destination"] = [destination]
    sender = _logical(ctx, msh.field(4).repetition(1))
    if sender:
        header["sender"] = sender
    if targets:
        header["focus"] = targets
    _put(ctx, header, seed)
    evn = message.segment("EVN")
    recorded = None
    if evn is not None:
        recorded = instant(ctx, evn.get(2), "EVN-2")
    recorded = recorded or instant(ctx, msh.get(7), "MSH-7")
    if not targets or recorded is None:
        ctx.issue("EVN-2", "no recorded time (EVN-2, MSH-7): no Provenance written")
        return
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": recorded,
        "activity": {"coding": [event]},
    }
    agents: list[dict[str, Any]] = []
    if evn is not None:
        occurred = datetime(ctx, evn.get(6), "EVN-6")
        if occurred:
            provenance["occurredDateTime"] = occurred
        reason = codeable(ctx, evn.field(4).repetition(1), "EVN-4", v2_table="HL70062")
        if reason and evn.get(4) != "U":
            provenance["reason"] = [reason]
        operator = practitioner(ctx, evn.field(5).repetition(1), "EVN-5")
        if operator:
            agents.append({"type": _agent_type("enterer", "Enterer"), "who": operator})
    author = _logical(ctx, sending_app) or sender
    if author:
        agents.append({"type": _agent_type("author", "Author"), "who": author})
    if not agents:
        ctx.issue("EVN-5", "no operator nor sending application: no Provenance written")
        return
    provenance["agent"] = agents
    _put(ctx, provenance, seed)


def _agent_type(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": _AGENT_TYPE, "code": code, "display": display}]}


def _put(ctx: MapContext, resource: dict[str, Any], seed: str) -> None:
    rtype = resource["resourceType"]
    rid = str(uuid.uuid5(_IDS, f"{rtype}|{seed}"))
    resource["id"] = rid
    ctx.entries.append(
        {
            "fullUrl": ctx.full_url(f"{rtype}|{seed}"),
            "resource": resource,
            "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
        }
    )
