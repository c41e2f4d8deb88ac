"""Tests of the HL7 v2 parser and the v2-to-FHIR mapping."""
