"""Tests of the HL7 v2 to FHIR R4 mapping."""
