"""Tests of the HL7 v2 interface engine (MLLP, journal, channels, processing, health)."""
