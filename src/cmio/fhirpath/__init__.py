"""FHIRPath for cmio: one engine for search parameters, invariants, views and rules.

Implements FHIRPath N1 (http://hl7.org/fhirpath/N1/) with the FHIR R4 additions
(http://hl7.org/fhir/R4/fhirpath.html) over FHIR JSON, typed by the R4 model::

    from cmio.fhirpath import FhirPathEngine

    engine = FhirPathEngine()                  # loads the R4 model
    names = engine.compile("Patient.name.given")
    names.evaluate(patient_json)               # ['Peter', 'James', ...]

Results are Python values: ``str``, ``bool``, ``int``, ``decimal.Decimal``,
``dict`` for complex values, and :class:`Date`, :class:`DateTime`,
:class:`Time`, :class:`Quantity` objects whose ``str()`` is the FHIRPath
literal. Errors raise :class:`FhirPathError`.
"""

from cmio.fhirpath.context import Resolver, TerminologyProvider
from cmio.fhirpath.engine import CompiledExpression, FhirPathEngine, TypedValue, compile, evaluate
from cmio.fhirpath.errors import FhirPathError, FhirPathSemanticError, FhirPathSyntaxError
from cmio.fhirpath.functions import FunctionSpec
from cmio.fhirpath.parser import parse
from cmio.fhirpath.quantity import Quantity
from cmio.fhirpath.temporal import Date, DateTime, Time

__all__ = [
    "CompiledExpression",
    "Date",
    "DateTime",
    "FhirPathEngine",
    "FhirPathError",
    "FhirPathSemanticError",
    "FhirPathSyntaxError",
    "FunctionSpec",
    "Quantity",
    "Resolver",
    "TerminologyProvider",
    "Time",
    "TypedValue",
    "compile",
    "evaluate",
    "parse",
]
