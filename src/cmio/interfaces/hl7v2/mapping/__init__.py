"""HL7 v2 to FHIR R4 by the HL7 Version 2 to FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).

:func:`map_message` turns a parsed message into a FHIR transaction Bundle of conditional
writes (patients matched by MR identifier and assigning authority, encounters by visit
number), lists the codes no map knew, and for ADT^A40 returns a :class:`Merge` to apply with
:func:`apply_merge` through a :class:`FhirClient` (e.g. an adapter over the FHIR router).
Local codes go through the terminology service's ConceptMaps with a
:class:`ConceptMapTranslator` given as ``MappingOptions.translate``.

Deliberate limits (each visible in the result, nothing is dropped silently):

* Locations (PL: PV1-3/6/11/42) become Location resources chained by ``partOf`` and matched
  by a hierarchical identifier (:mod:`.locations`) in ADT messages; results, orders and
  other messages that only create a missing visit refer to them by display text.
* MSH/EVN become a MessageHeader and a Provenance only with ``MappingOptions.provenance``
  (:mod:`.header`; the engine journals every message anyway); otherwise EVN is listed in
  ``ignored_segments`` like Z-segments.
* PID-10 race and PID-22 ethnic group (left by the IG to realm profiles) become the US Core
  race/ethnicity extensions when they are CDC Race & Ethnicity codes (:mod:`.demographics`);
  other codes are kept in a cmio extension and reported as unmapped.
* ADT writes the Patient and Encounter with conditional updates, i.e. whole-resource
  replacement. A ``Patient.link`` written by a merge survives a later ADT for either patient
  when ``MappingOptions.patient_links`` is set (e.g. :func:`store_patient_links` over the
  store): the mapping reads the stored links and writes them back, with ``active: false`` on
  a replaced patient. Without that lookup a later ADT replaces the links. (Conditional PATCH
  in a transaction, the other way, is not supported by the store.)
* The IG's SIU_S12 and MDM_T02 segment maps are not in the shared subset; SCH, AIx and TXA
  follow the v2.5.1 field definitions.
"""

from cmio.interfaces.hl7v2.mapping.context import (
    MappingError,
    MappingOptions,
    MappingResult,
    Merge,
    PatientLinks,
    Translate,
    UnmappedCode,
)
from cmio.interfaces.hl7v2.mapping.merge import (
    FhirClient,
    MergeOutcome,
    apply_merge,
    merge_bundle,
    store_patient_links,
)
from cmio.interfaces.hl7v2.mapping.messages import SUPPORTED, map_message, patient_key
from cmio.interfaces.hl7v2.mapping.terminology import ConceptMapTranslator

__all__ = [
    "SUPPORTED",
    "ConceptMapTranslator",
    "FhirClient",
    "MappingError",
    "MappingOptions",
    "MappingResult",
    "Merge",
    "MergeOutcome",
    "PatientLinks",
    "Translate",
    "UnmappedCode",
    "apply_merge",
    "map_message",
    "merge_bundle",
    "patient_key",
    "store_patient_links",
]
