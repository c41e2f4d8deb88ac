"""HL7 v2 to FHIR R4 by the HL7 Version 2 to FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).

:func:`map_message` turns a parsed message into a FHIR transaction Bundle of conditional
writes (patients matched by MR identifier and assigning authority, encounters by visit
number), lists the codes no map knew, and for ADT^A40 returns a :class:`Merge` to apply with
:func:`apply_merge` through a :class:`FhirClient` (e.g. an adapter over the FHIR router).
Local codes go through the terminology service's ConceptMaps with a
:class:`ConceptMapTranslator` given as ``MappingOptions.translate``.
"""

from cmio.interfaces.hl7v2.mapping.context import (
    MappingError,
    MappingOptions,
    MappingResult,
    Merge,
    Translate,
    UnmappedCode,
)
from cmio.interfaces.hl7v2.mapping.merge import FhirClient, MergeOutcome, apply_merge, merge_bundle
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
    "Translate",
    "UnmappedCode",
    "apply_merge",
    "map_message",
    "merge_bundle",
    "patient_key",
]
