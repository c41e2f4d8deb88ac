"""FHIR search: parsed requests, the SQL compiler and the in-memory matcher.

See https://hl7.org/fhir/R4/search.html.
"""

from cmio.search.compiler import SearchCompiler, parse_sort
from cmio.search.request import Chain, Filter, Has, Node, UnknownParameterError, resolve
from cmio.search.terminology import TerminologyNotSupportedError, TerminologyProvider

__all__ = [
    "Chain",
    "Filter",
    "Has",
    "Node",
    "SearchCompiler",
    "TerminologyNotSupportedError",
    "TerminologyProvider",
    "UnknownParameterError",
    "parse_sort",
    "resolve",
]
