"""Loaders of terminology content into the concept store and the FHIR repository.

One module per source: :mod:`.core` (R4 core CodeSystems and ValueSets),
:mod:`.icd10cm`, :mod:`.loinc`, :mod:`.snomed`, :mod:`.rxnorm`, plus
:mod:`.synthetic` (a SNOMED CT-shaped RF2 generator for benchmarks) and
:mod:`.common` (fingerprints, CodeSystem resources for store-held systems).
"""
