"""The FHIRPath function library (http://hl7.org/fhirpath/N1/#functions).

:data:`FUNCTIONS` maps each function name to its :class:`FunctionSpec`; it is a
read-only mapping assembled from the modules of this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cmio.fhirpath.functions import collections, conversion, fhir, math, strings
from cmio.fhirpath.functions.base import Fn, FunctionSpec, spec

__all__ = ["FUNCTIONS", "Fn", "FunctionSpec", "spec"]

FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType(
    {
        **collections.FUNCTIONS,
        **strings.FUNCTIONS,
        **conversion.FUNCTIONS,
        **math.FUNCTIONS,
        **fhir.FUNCTIONS,
    }
)
