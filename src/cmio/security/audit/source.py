"""Who a system job is, for its audit records (HL7 v2 senders, bulk import, reindex).

See https://hl7.org/fhir/R4/auditevent-definitions.html#AuditEvent.agent.who.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AuditSource"]


@dataclass(frozen=True, slots=True)
class AuditSource:
    """A system writing on its own account: an HL7 v2 sender on a channel, a bulk import,
    a reindex job. Recorded as the requesting agent, shaped like a Device
    (https://hl7.org/fhir/R4/auditevent-definitions.html#AuditEvent.agent.who), with
    the message or job it applied as an entity (HL7 v2: ``MSH-10`` in the entity's
    ``detail``, as the IHE ATNA records of HL7 v2 transactions carry it).

    Attributes:
        system: the identifier system naming the source (``urn:cmio:hl7v2:{channel}``).
        value: the source within it (the HL7 sending application and facility).
        display: a readable name.
        message: the id of the message or job applied (empty: none).
        message_type: what ``message`` is (``MSH-10``, ``job``).
        address: the source's network address, if known.
    """

    system: str
    value: str
    display: str
    message: str = ""
    message_type: str = "job"
    address: str | None = None

    @classmethod
    def hl7v2(cls, channel: str, sender: str, control_id: str) -> AuditSource:
        """The sender of one HL7 v2 message on ``channel`` (``sender``: MSH-3|MSH-4)."""
        name = sender.replace("|", " ").strip() or "unknown sender"
        return cls(
            f"urn:cmio:hl7v2:{channel}",
            sender,
            f"HL7 v2 {name} on channel {channel}",
            control_id,
            "MSH-10",
        )
