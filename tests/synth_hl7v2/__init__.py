"""Tests of the HL7 v2 feeds built from the synthetic health system."""
