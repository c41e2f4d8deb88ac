"""Interfaces to other systems: HL7 v2 parsing and mapping to FHIR R4 (:mod:`cmio.interfaces.hl7v2`)."""

__all__: list[str] = []
