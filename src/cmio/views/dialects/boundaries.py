"""``lowBoundary()``/``highBoundary()`` as SQL templates over a value's text, per engine.

FHIRPath (https://build.fhir.org/fhirpath.html#lowboundaryprecision-integer-decimal-date-datetime-time):
at the default precision, a decimal's boundaries are the value minus/plus half a unit
of its last digit; a partial date's are the first/last day of its year or month; a
time or dateTime is completed to milliseconds with the lowest/highest clock, and a
dateTime without a zone gets the widest one (``+14:00`` low, ``-12:00`` high).

:func:`boundary_templates` writes the templates once from the few engine-specific
snippets of :class:`Snippets`; the dialects parse them with their own SQL dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

__all__ = ["Snippets", "boundary_sql", "boundary_templates"]

_ZONE = "(Z|[+-][0-9][0-9]:[0-9][0-9])$"


@dataclass(frozen=True, slots=True)
class Snippets:
    """The engine-specific parts, as SQL text with placeholders.

    Attributes:
        month_end: the last day (``YYYY-MM-DD`` text) of the month of ``{d}`` (``YYYY-MM``).
        zone: the zone suffix (``Z``, ``+hh:mm``) of ``{s}``, or ``''`` when there is none.
        has_dot: whether ``{v}`` contains a ``.`` (boolean).
        split: part ``{n}`` (1-based) of ``{v}`` split on ``{sep}``, ``''`` when absent.
        decimal: the exact decimal type name.
    """

    month_end: str
    zone: str
    has_dot: str
    split: str
    decimal: str


def _date(d: str, high: bool, s: Snippets) -> str:
    if high:
        end = s.month_end.format(d=d)
        return f"CASE length({d}) WHEN 4 THEN {d} || '-12-31' WHEN 7 THEN {end} ELSE {d} END"
    return f"CASE length({d}) WHEN 4 THEN {d} || '-01-01' WHEN 7 THEN {d} || '-01' ELSE {d} END"


def _time(t: str, high: bool) -> str:
    hour, minute, second = (
        (":59:59.999", ":59.999", ".999") if high else (":00:00.000", ":00.000", ".000")
    )
    return (
        f"CASE length({t}) WHEN 2 THEN {t} || '{hour}' WHEN 5 THEN {t} || '{minute}' "
        f"WHEN 8 THEN {t} || '{second}' WHEN 10 THEN {t} || '00' "
        f"WHEN 11 THEN {t} || '0' ELSE {t} END"
    )


def _datetime(high: bool, s: Snippets) -> str:
    day = _date(s.split.format(v="{v}", sep="'T'", n=1), high, s)
    after = s.split.format(v="{v}", sep="'T'", n=2)
    zone = s.zone.format(s=after)
    clock = f"regexp_replace({after}, '{_ZONE}', '')"
    whole, widest = ("23:59:59.999", "-12:00") if high else ("00:00:00.000", "+14:00")
    return (
        f"{day} || 'T' || CASE WHEN {clock} = '' THEN '{whole}' ELSE {_time(clock, high)} END "
        f"|| CASE WHEN {zone} = '' THEN '{widest}' ELSE {zone} END"
    )


def _decimal(high: bool, s: Snippets) -> str:
    digits = s.split.format(v="{v}", sep="'.'", n=2)
    scale = f"CASE WHEN {s.has_dot.format(v='{v}')} THEN length({digits}) ELSE 0 END"
    half = f"CAST('0.' || repeat('0', {scale}) || '5' AS {s.decimal})"
    return f"CAST({{v}} AS {s.decimal}) {'+' if high else '-'} {half}"


def boundary_templates(s: Snippets) -> dict[tuple[str, bool], str]:
    """(FHIR type, high) -> the SQL template over the value's text ``{v}``."""
    out: dict[tuple[str, bool], str] = {}
    for high in (False, True):
        out[("decimal", high)] = _decimal(high, s)
        out[("date", high)] = _date("{v}", high, s)
        out[("time", high)] = _time("{v}", high)
        out[("dateTime", high)] = _datetime(high, s)
        out[("instant", high)] = _datetime(high, s)
    return out


def boundary_sql(
    templates: dict[tuple[str, bool], str],
    ftype: str,
    high: bool,
    text: exp.Expression,
    dialect: str,
) -> exp.Expression | None:
    """The template for ``(ftype, high)`` parsed in ``dialect`` over ``text`` (None: no template)."""
    template = templates.get((ftype, high))
    if template is None:
        return None
    parsed: exp.Expression = exp.maybe_parse(template.format(v="_boundary_input"), dialect=dialect)
    filled: exp.Expression = parsed.transform(
        lambda node: (
            text.copy() if isinstance(node, exp.Column) and node.name == "_boundary_input" else node
        )
    )
    return filled
