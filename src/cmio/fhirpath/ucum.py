"""A small UCUM unit parser for comparing and converting quantities.

UCUM (https://ucum.org/ucum) defines ~300 units; clinical data uses a few dozen.
This module parses the UCUM expression syntax (prefixes, exponents, ``.`` and
``/``, parentheses, ``{annotations}``, ``10*n``) over a table of the common
atoms: SI base and derived units, clinical volumes and pressures, time units,
customary (``[lb_av]``, ``[in_i]``...) and arbitrary units. A unit resolves to a
factor and a dimension vector; two quantities are comparable when their
dimensions agree (http://hl7.org/fhirpath/N1/#quantity-equality). Units not in
the table are not comparable with any other unit, only with themselves.

Special (non-linear) units, ``Cel`` and ``[degF]``, get their own dimension, so
they compare only with the same unit.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

__all__ = ["Unit", "parse_unit"]

_BASES = ("m", "g", "s", "rad", "K", "C", "cd", "mol", "eq", "[iU]", "Cel", "[degF]", "[arb]")
_INDEX = {name: i for i, name in enumerate(_BASES)}
Dims = tuple[int, ...]
_NONE: Dims = (0,) * len(_BASES)


class Unit(NamedTuple):
    """A parsed unit: the value of one unit in base units, and its dimensions."""

    factor: Decimal
    dims: Dims


def _dims(**exponents: int) -> Dims:
    vector = [0] * len(_BASES)
    for name, exp in exponents.items():
        vector[_INDEX[{"iU": "[iU]", "degF": "[degF]", "arb": "[arb]"}.get(name, name)]] = exp
    return tuple(vector)


_D = Decimal
# atom -> (factor in base units, dims, metric: takes prefixes)
_ATOMS: dict[str, tuple[Decimal, Dims, bool]] = {
    "1": (_D(1), _NONE, False),
    "m": (_D(1), _dims(m=1), True),
    "g": (_D(1), _dims(g=1), True),
    "s": (_D(1), _dims(s=1), True),
    "rad": (_D(1), _dims(rad=1), True),
    "K": (_D(1), _dims(K=1), True),
    "C": (_D(1), _dims(C=1), True),
    "cd": (_D(1), _dims(cd=1), True),
    "mol": (_D(1), _dims(mol=1), True),
    "eq": (_D(1), _dims(eq=1), True),
    "[iU]": (_D(1), _dims(iU=1), True),
    "[IU]": (_D(1), _dims(iU=1), True),
    "U": (_D("1E-6") / _D(60), _dims(mol=1, s=-1), True),  # umol/min
    "kat": (_D(1), _dims(mol=1, s=-1), True),
    "Cel": (_D(1), _dims(Cel=1), True),
    "[degF]": (_D(1), _dims(degF=1), False),
    "%": (_D("0.01"), _NONE, False),
    "[ppth]": (_D("0.001"), _NONE, False),
    "[ppm]": (_D("0.000001"), _NONE, False),
    "[ppb]": (_D("0.000000001"), _NONE, False),
    "[pi]": (_D("3.1415926535897932384626433832795028841971693993751"), _NONE, False),
    "deg": (_D("0.017453292519943295769236907684886127134428718885417"), _dims(rad=1), False),
    # time
    "min": (_D(60), _dims(s=1), False),
    "h": (_D(3600), _dims(s=1), False),
    "d": (_D(86400), _dims(s=1), False),
    "wk": (_D(604800), _dims(s=1), False),
    "mo": (_D(2629800), _dims(s=1), False),
    "mo_j": (_D(2629800), _dims(s=1), False),
    "mo_g": (_D(2629746), _dims(s=1), False),
    "a": (_D(31557600), _dims(s=1), False),
    "a_j": (_D(31557600), _dims(s=1), False),
    "a_g": (_D(31556952), _dims(s=1), False),
    "Hz": (_D(1), _dims(s=-1), True),
    "Bq": (_D(1), _dims(s=-1), True),
    # length, area, volume
    "[in_i]": (_D("0.0254"), _dims(m=1), False),
    "[ft_i]": (_D("0.3048"), _dims(m=1), False),
    "[yd_i]": (_D("0.9144"), _dims(m=1), False),
    "[mi_i]": (_D("1609.344"), _dims(m=1), False),
    "Ao": (_D("1E-10"), _dims(m=1), False),
    "L": (_D("0.001"), _dims(m=3), True),
    "l": (_D("0.001"), _dims(m=3), True),
    "ar": (_D(100), _dims(m=2), True),
    "[gal_us]": (_D("0.003785411784"), _dims(m=3), False),
    "[qt_us]": (_D("0.000946352946"), _dims(m=3), False),
    "[pt_us]": (_D("0.000473176473"), _dims(m=3), False),
    "[foz_us]": (_D("0.0000295735295625"), _dims(m=3), False),
    "[cup_us]": (_D("0.0002365882365"), _dims(m=3), False),
    "[tsp_us]": (_D("0.00000492892159375"), _dims(m=3), False),
    "[tbs_us]": (_D("0.00001478676478125"), _dims(m=3), False),
    "[drp]": (_D("0.00000005"), _dims(m=3), False),
    # mass
    "t": (_D(1000000), _dims(g=1), True),
    "[lb_av]": (_D("453.59237"), _dims(g=1), False),
    "[oz_av]": (_D("28.349523125"), _dims(g=1), False),
    "[gr]": (_D("0.06479891"), _dims(g=1), False),
    "[stone_av]": (_D("6350.29318"), _dims(g=1), False),
    "u": (_D("1.6605402E-24"), _dims(g=1), True),
    # force, pressure, energy, power
    "N": (_D(1000), _dims(g=1, m=1, s=-2), True),
    "Pa": (_D(1000), _dims(g=1, m=-1, s=-2), True),
    "bar": (_D(100000000), _dims(g=1, m=-1, s=-2), True),
    "atm": (_D(101325000), _dims(g=1, m=-1, s=-2), False),
    "m[Hg]": (_D(133322000), _dims(g=1, m=-1, s=-2), True),
    "mm[Hg]": (_D(133322), _dims(g=1, m=-1, s=-2), False),
    "m[H2O]": (_D(9806650), _dims(g=1, m=-1, s=-2), True),
    "cm[H2O]": (_D("98066.5"), _dims(g=1, m=-1, s=-2), False),
    "J": (_D(1000), _dims(g=1, m=2, s=-2), True),
    "cal": (_D("4184"), _dims(g=1, m=2, s=-2), True),
    "[Cal]": (_D("4184000"), _dims(g=1, m=2, s=-2), False),
    "W": (_D(1000), _dims(g=1, m=2, s=-3), True),
    "A": (_D(1), _dims(C=1, s=-1), True),
    "V": (_D(1000), _dims(g=1, m=2, s=-2, C=-1), True),
    # arbitrary and count-like units
    "[arb'U]": (_D(1), _dims(arb=1), False),
    "[HPF]": (_D(1), _NONE, False),
    "[LPF]": (_D(1), _NONE, False),
    "[drp_]": (_D(1), _NONE, False),
}

_PREFIXES: dict[str, Decimal] = {
    "Y": _D("1E24"),
    "Z": _D("1E21"),
    "E": _D("1E18"),
    "P": _D("1E15"),
    "T": _D("1E12"),
    "G": _D("1E9"),
    "M": _D("1E6"),
    "k": _D("1E3"),
    "h": _D("1E2"),
    "da": _D("1E1"),
    "d": _D("1E-1"),
    "c": _D("1E-2"),
    "m": _D("1E-3"),
    "u": _D("1E-6"),
    "n": _D("1E-9"),
    "p": _D("1E-12"),
    "f": _D("1E-15"),
    "a": _D("1E-18"),
    "z": _D("1E-21"),
    "y": _D("1E-24"),
}

_TOKEN = re.compile(r"\{[^}]*\}|\(|\)|[./]|10\*[+-]?\d+|10\^[+-]?\d+|[^./(){}]+")
_EXPONENT = re.compile(r"^(.*?[^0-9+-])([+-]?\d+)$")


def _atom(text: str) -> Unit | None:
    entry = _ATOMS.get(text)
    if entry is not None:
        return Unit(entry[0], entry[1])
    for size in (2, 1):
        prefix, rest = text[:size], text[size:]
        factor = _PREFIXES.get(prefix)
        entry = _ATOMS.get(rest)
        if factor is not None and entry is not None and entry[2]:
            return Unit(factor * entry[0], entry[1])
    return None


def _simple(text: str) -> Unit | None:
    """A unit with an optional exponent: ``m2``, ``s-1``, ``10*3``, ``mg{total}``."""
    if text.startswith(("10*", "10^")):
        return Unit(_D(10) ** int(text[3:]), _NONE)
    if text.isdigit():
        return Unit(_D(text), _NONE)
    unit = _atom(text)
    if unit is not None:
        return unit
    match = _EXPONENT.match(text)
    if match is None:
        return None
    unit = _atom(match.group(1))
    if unit is None:
        return None
    exp = int(match.group(2))
    return Unit(unit.factor**exp, tuple(d * exp for d in unit.dims))


def _combine(a: Unit, b: Unit, divide: bool) -> Unit:
    if divide:
        return Unit(a.factor / b.factor, tuple(x - y for x, y in zip(a.dims, b.dims, strict=True)))
    return Unit(a.factor * b.factor, tuple(x + y for x, y in zip(a.dims, b.dims, strict=True)))


def _term(tokens: list[str], pos: int) -> tuple[Unit | None, int]:
    result = Unit(_D(1), _NONE)
    divide = False
    expect_component = True
    while pos < len(tokens):
        token = tokens[pos]
        if token in "./" and len(token) == 1:
            if expect_component and not (token == "/" and pos == 0):
                return None, pos
            divide = token == "/"
            expect_component = True
            pos += 1
            continue
        if token == ")":
            break
        if not expect_component and not token.startswith("{"):
            return None, pos
        if token == "(":
            inner, pos = _term(tokens, pos + 1)
            if inner is None or pos >= len(tokens) or tokens[pos] != ")":
                return None, pos
            pos += 1
            component: Unit | None = inner
        elif token.startswith("{"):
            component = Unit(_D(1), _NONE)
            pos += 1
            if not expect_component:
                continue
        else:
            component = _simple(token)
            pos += 1
        if component is None:
            return None, pos
        result = _combine(result, component, divide)
        expect_component = False
    if expect_component:
        return None, pos
    return result, pos


def parse_unit(code: str) -> Unit | None:
    """Parse a UCUM unit code; None if it is malformed or uses an atom not in the table.

    Args:
        code: a case-sensitive UCUM code such as ``mg/dL``, ``kg/m2``, ``/min``.

    Returns:
        The unit's factor (in base units) and dimensions, or None.
    """
    if not code:
        return None
    tokens = _TOKEN.findall(code)
    if "".join(tokens) != code:
        return None
    unit, pos = _term(tokens, 0)
    return unit if pos == len(tokens) else None
