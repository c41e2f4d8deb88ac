"""The typed values FHIRPath results may hold, in one place.

- :class:`Date`, :class:`DateTime`, :class:`Time`: partial-precision dates and
  times (http://hl7.org/fhirpath/N1/#date, #datetime, #time);
- :class:`Quantity`: a Decimal value and a UCUM or calendar unit
  (http://hl7.org/fhirpath/N1/#quantity);
- :class:`TypedValue`: a result with its type name, from
  :meth:`CompiledExpression.evaluate_typed`.

``str()`` of each is its FHIRPath literal form (``@2014-01-25``, ``4 'mg'``).
"""

from cmio.fhirpath.engine import TypedValue
from cmio.fhirpath.quantity import Quantity
from cmio.fhirpath.temporal import Date, DateTime, Temporal, Time

__all__ = ["Date", "DateTime", "Quantity", "Temporal", "Time", "TypedValue"]
