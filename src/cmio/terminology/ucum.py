"""UCUM unit validation and canonical conversion from the official ``ucum-essence.xml``.

The Unified Code for Units of Measure (https://ucum.org/ucum) defines units by
prefixes, seven base units and ~300 derived units, each defined by a value times
another unit expression; ``ucum-essence.xml`` is its machine-readable table
(the copy vendored in the ``ucumvert`` package is read here, at run time, no
network). FHIR uses UCUM for Quantity units (https://hl7.org/fhir/R4/datatypes.html#Quantity)
and as code system ``http://unitsofmeasure.org`` (https://terminology.hl7.org/CodeSystem-v3-ucum.html).

:class:`Ucum` parses the UCUM syntax (https://ucum.org/ucum#section-Syntax-Rules:
``.`` and ``/`` with left-to-right precedence, parentheses, integer exponents,
prefixes on metric atoms, ``{annotations}``, integer factors), validates a unit
and reduces it to canonical form: a factor over the base units (arbitrary units
such as ``[IU]`` stay as their own dimension). Special (non-ratio) units convert
through their functions when they stand alone: ``Cel``, ``[degF]``, ``[degRe]``,
``[pH]``, ``Np`` and the ``B`` (bel) family.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal, localcontext
from importlib.resources import files
from pathlib import Path

__all__ = ["Canonical", "Ucum", "UcumError", "essence_path"]

_NS = {"u": "http://unitsofmeasure.org/ucum-essence"}
_PRECISION = 40
_RESULT_DIGITS = 28
_TOKEN = re.compile(r"\(|\)|\.|/|\{[^{}]*\}|(?:[^./(){}\[\]]|\[[^\[\]]*\])+")
_EXPONENT = re.compile(r"^(.*?)([+-]?\d+)$")
Dims = tuple[tuple[str, int], ...]


class UcumError(ValueError):
    """A unit is not valid UCUM, or two units cannot be converted into each other."""


@dataclass(frozen=True, slots=True)
class Canonical:
    """A unit reduced to base units: ``factor`` times the product of ``dims``.

    Attributes:
        special: the special unit's function name when the unit is a lone special unit.
    """

    factor: Decimal
    dims: Dims
    special: str | None = None

    @property
    def unit(self) -> str:
        """The canonical unit string, e.g. ``g.m-3``; ``1`` when dimensionless."""
        parts = [code if exp == 1 else f"{code}{exp}" for code, exp in self.dims]
        return ".".join(parts) or "1"


def _rounded(value: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _RESULT_DIGITS
        return (+value).normalize()


def essence_path() -> Path:
    """Location of ``ucum-essence.xml`` inside the installed ``ucumvert`` package."""
    return Path(str(files("ucumvert") / "vendor" / "ucum-essence.xml"))


@dataclass(frozen=True, slots=True)
class _Atom:
    code: str
    metric: bool
    special: str | None
    arbitrary: bool
    value: Decimal
    definition: str


def _mul(a: Dims, b: Dims, sign: int) -> Dims:
    out: dict[str, int] = dict(a)
    for code, exp in b:
        out[code] = out.get(code, 0) + sign * exp
    return tuple((c, e) for c, e in out.items() if e)


def _pow(a: Dims, n: int) -> Dims:
    return tuple((c, e * n) for c, e in a)


class Ucum:
    """The UCUM tables of one ``ucum-essence.xml`` and the operations on units."""

    def __init__(self, path: Path | None = None) -> None:
        root = ET.parse(path or essence_path()).getroot()
        self.version = root.get("version")
        self._prefixes: dict[str, Decimal] = {}
        for p in root.findall("u:prefix", _NS):
            value = p.find("u:value", _NS)
            assert value is not None
            self._prefixes[p.get("Code", "")] = Decimal(value.get("value", "1"))
        self._bases = [b.get("Code", "") for b in root.findall("u:base-unit", _NS)]
        self._order = {code: i for i, code in enumerate(self._bases)}
        self._atoms: dict[str, _Atom] = {}
        for u in root.findall("u:unit", _NS):
            value = u.find("u:value", _NS)
            assert value is not None
            function = value.find("u:function", _NS)
            code = u.get("Code", "")
            self._atoms[code] = _Atom(
                code=code,
                metric=u.get("isMetric") == "yes",
                special=function.get("name") if function is not None else None,
                arbitrary=u.get("isArbitrary") == "yes",
                value=Decimal(
                    (function.get("value") if function is not None else value.get("value")) or "1"
                ),
                definition=(function.get("Unit") if function is not None else value.get("Unit"))
                or "1",
            )
        self._cache: dict[str, Canonical] = {}

    # -- parsing -----------------------------------------------------------------
    def _atom(self, token: str) -> Canonical:
        if token in self._bases:
            return Canonical(Decimal(1), ((token, 1),))
        atom = self._atoms.get(token)
        if atom is not None:
            return self._expand(atom)
        for size in (2, 1):
            prefix, rest = token[:size], token[size:]
            if prefix in self._prefixes and rest:
                base = self._bases_or_atom(rest)
                if base is not None:
                    inner = self._atom(rest)
                    return Canonical(
                        inner.factor * self._prefixes[prefix], inner.dims, inner.special
                    )
        raise UcumError(f"unknown unit atom {token!r}")

    def _bases_or_atom(self, code: str) -> str | None:
        if code in self._bases:
            return code
        atom = self._atoms.get(code)
        return code if atom is not None and atom.metric else None

    def _expand(self, atom: _Atom) -> Canonical:
        if atom.arbitrary and atom.definition == "1":
            return Canonical(Decimal(1), ((atom.code, 1),))
        inner = self._parse(atom.definition)
        if atom.special is not None:
            return Canonical(inner.factor * atom.value, inner.dims, atom.special)
        return Canonical(inner.factor * atom.value, inner.dims, inner.special)

    def _component(self, token: str) -> Canonical:
        if token.isdigit():
            return Canonical(Decimal(token), ())
        if token.startswith("{"):
            return Canonical(Decimal(1), ())
        annotation = token.find("{")
        if annotation > 0:
            token = token[:annotation]
        if token in self._atoms or token in self._bases:
            return self._atom(token)
        match = _EXPONENT.match(token)
        if match and match.group(1):
            base, exp = self._atom(match.group(1)), int(match.group(2))
            if base.special and exp != 1:
                raise UcumError(f"special unit {match.group(1)!r} cannot take an exponent")
            return Canonical(base.factor**exp, _pow(base.dims, exp), base.special)
        return self._atom(token)

    def _parse(self, text: str) -> Canonical:
        tokens = _TOKEN.findall(text)
        if "".join(tokens) != text or not text:
            raise UcumError(f"{text!r} is not a valid UCUM expression")
        position = 0

        def term() -> Canonical:
            nonlocal position
            if position < len(tokens) and tokens[position] == "/":
                position += 1
                first = component()
                result = Canonical(1 / first.factor, _pow(first.dims, -1))
            else:
                result = component()
            while position < len(tokens) and tokens[position] in (".", "/"):
                op = tokens[position]
                position += 1
                right = component()
                if result.special or right.special:
                    result = Canonical(result.factor, result.dims, "compound")
                sign = 1 if op == "." else -1
                factor = result.factor * right.factor if sign == 1 else result.factor / right.factor
                result = Canonical(factor, _mul(result.dims, right.dims, sign), result.special)
            return result

        def component() -> Canonical:
            nonlocal position
            if position >= len(tokens):
                raise UcumError(f"{text!r}: unit expected at the end")
            token = tokens[position]
            position += 1
            if token == "(":
                inner = term()
                if position >= len(tokens) or tokens[position] != ")":
                    raise UcumError(f"{text!r}: missing ')'")
                position += 1
                if position < len(tokens) and tokens[position].startswith("{"):
                    position += 1  # an annotation on the group
                return inner
            if token in (")", ".", "/"):
                raise UcumError(f"{text!r}: unexpected {token!r}")
            found = self._component(token)
            if position < len(tokens) and tokens[position].startswith("{") and token[0] != "{":
                position += 1  # an annotation on this component
            return found

        with localcontext() as ctx:
            ctx.prec = _PRECISION
            result = term()
        if position != len(tokens):
            raise UcumError(f"{text!r}: unexpected {tokens[position]!r}")
        return result

    def analyse(self, unit: str) -> Canonical:
        """The canonical form of ``unit`` (cached per instance).

        Raises:
            UcumError: the unit is not valid UCUM (the message names the problem).
        """
        found = self._cache.get(unit)
        if found is None:
            if unit != unit.strip() or not unit:
                raise UcumError(f"{unit!r} is not a valid UCUM unit (empty or spaces)")
            raw = self._parse(unit)
            dims = tuple(
                sorted(raw.dims, key=lambda d: (self._order.get(d[0], len(self._order)), d[0]))
            )
            found = Canonical(raw.factor, dims, raw.special)
            self._cache[unit] = found
        return found

    # -- public API ----------------------------------------------------------------
    def validate(self, unit: str) -> str | None:
        """None when ``unit`` is valid UCUM, else the reason it is not."""
        try:
            self.analyse(unit)
        except UcumError as exc:
            return str(exc)
        return None

    def is_valid(self, unit: str) -> bool:
        """Whether ``unit`` is a valid UCUM unit expression."""
        return self.validate(unit) is None

    def canonical(self, value: Decimal | int | float | str, unit: str) -> tuple[Decimal, str]:
        """``value unit`` expressed in canonical (base) units, e.g. 5 mg/dL -> (50, 'g.m-3').

        Raises:
            UcumError: invalid unit, or a special unit inside a compound expression.
        """
        canonical = self.analyse(unit)
        amount = Decimal(str(value))
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            if canonical.special is None:
                result = amount * canonical.factor
            else:
                result = self._from_special(canonical, amount)
        return _rounded(result), canonical.unit

    def convert(self, value: Decimal | int | float | str, source: str, target: str) -> Decimal:
        """Convert ``value`` from unit ``source`` to unit ``target``.

        Raises:
            UcumError: an invalid unit, or units of different dimensions.
        """
        if source == target:
            self.analyse(source)
            return Decimal(str(value))
        amount, unit = self.canonical(value, source)
        goal = self.analyse(target)
        if goal.unit != unit:
            raise UcumError(f"cannot convert {source!r} ({unit}) to {target!r} ({goal.unit})")
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            result = (
                amount / goal.factor if goal.special is None else self._to_special(goal, amount)
            )
        return _rounded(result)

    # -- special units -------------------------------------------------------------
    def _from_special(self, unit: Canonical, x: Decimal) -> Decimal:
        f = unit.factor
        match unit.special:
            case "Cel":
                return ((x + Decimal("273.15")) * f).normalize()
            case "degF":
                return ((x + Decimal("459.67")) * f).normalize()
            case "degRe":
                return ((x + Decimal("218.52")) * f).normalize()
            case "pH":
                return (Decimal(10) ** -x * f).normalize()
            case "ln":
                return (x.exp() * f).normalize()
            case "lg":
                return (Decimal(10) ** x * f).normalize()
            case "lgTimes2" | "lgTimes2Power":
                return (Decimal(10) ** (x / 2) * f).normalize()
        raise UcumError(f"special unit function {unit.special!r} is not convertible here")

    def _to_special(self, unit: Canonical, y: Decimal) -> Decimal:
        g = y / unit.factor
        match unit.special:
            case "Cel":
                return (g - Decimal("273.15")).normalize()
            case "degF":
                return (g - Decimal("459.67")).normalize()
            case "degRe":
                return (g - Decimal("218.52")).normalize()
            case "pH":
                return (-g.log10()).normalize()
            case "ln":
                return g.ln().normalize()
            case "lg":
                return g.log10().normalize()
            case "lgTimes2" | "lgTimes2Power":
                return (2 * g.log10()).normalize()
        raise UcumError(f"special unit function {unit.special!r} is not convertible here")
