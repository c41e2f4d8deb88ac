"""HL7 v2 encoding rules: delimiters, escape sequences, fields, segments and framing.

Implements the ER7 ("pipe and hat") encoding of HL7 v2.5.1, chapter 2 (Control),
section 2.5 "Message construction rules" and 2.7 "Use of escape sequences in text fields":
https://v2plus.hl7.org/2021Jan/index.html . Delimiters are the recommended ones
(``|`` field, ``^`` component, ``~`` repetition, ``\\`` escape, ``&`` subcomponent);
segments end with ``\\r``. MLLP framing follows the HL7 v2 Minimal Lower Layer
Protocol (``\\x0b`` message ``\\x1c\\r``).

Composite values are built bottom-up: :func:`sub` joins subcomponents, :func:`comp`
joins components, :func:`rep` joins repetitions. Each escapes plain ``str`` parts and
passes already-encoded parts (:class:`Encoded`) through unchanged, so nothing is
escaped twice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

__all__ = [
    "ENCODING_CHARACTERS",
    "MLLP_END",
    "MLLP_START",
    "SEGMENT_TERMINATOR",
    "Encoded",
    "comp",
    "dt",
    "escape",
    "mllp_frame",
    "number",
    "rep",
    "segment",
    "sub",
    "ts",
    "unescape",
]

ENCODING_CHARACTERS = "^~\\&"
SEGMENT_TERMINATOR = "\r"
MLLP_START = b"\x0b"
MLLP_END = b"\x1c\r"

_ESCAPES = {
    "\\": "\\E\\",
    "|": "\\F\\",
    "^": "\\S\\",
    "&": "\\T\\",
    "~": "\\R\\",
    "\r": "\\X0D\\",
    "\n": "\\X0A\\",
}
_UNESCAPES = {"E": "\\", "F": "|", "S": "^", "T": "&", "R": "~"}
_TABLE = str.maketrans(_ESCAPES)


class Encoded(str):
    """A value that is already HL7-encoded (escaped, delimiters placed): never re-escaped."""

    __slots__ = ()


Part = str | None


def escape(text: str) -> str:
    """Escape the delimiters and line breaks in ``text`` (v2.5.1 section 2.7).

    Args:
        text: raw text.

    Returns:
        The text with ``\\ | ^ & ~`` as ``\\E\\ \\F\\ \\S\\ \\T\\ \\R\\`` and CR/LF as ``\\X0D\\``/``\\X0A\\``.
        See https://v2plus.hl7.org/2021Jan/index.html (Control, escape sequences).
    """
    return text.translate(_TABLE)


def unescape(text: str) -> str:
    """Undo :func:`escape` (``\\E\\ \\F\\ \\S\\ \\T\\ \\R\\`` and ``\\Xhh..\\``).

    Args:
        text: an escaped field, component or subcomponent value.

    Returns:
        The raw text. See https://v2plus.hl7.org/2021Jan/index.html (Control, escape sequences).
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        end = text.find("\\", i + 1) if c == "\\" else -1
        if end > i + 1:
            body = text[i + 1 : end]
            if body in _UNESCAPES:
                out.append(_UNESCAPES[body])
                i = end + 1
                continue
            if body.startswith("X") and len(body) % 2 == 1:
                out.append(bytes.fromhex(body[1:]).decode("latin-1"))
                i = end + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _join(sep: str, parts: tuple[Part, ...]) -> Encoded:
    values = [("" if not p else p if type(p) is Encoded else p.translate(_TABLE)) for p in parts]
    while values and not values[-1]:
        values.pop()
    return Encoded(sep.join(values))


def sub(*parts: Part) -> Encoded:
    """Join subcomponents with ``&`` (escaping plain text, trailing empties dropped; https://v2plus.hl7.org/2021Jan/index.html)."""
    return _join("&", parts)


def comp(*parts: Part) -> Encoded:
    """Join components with ``^`` (escaping plain text, trailing empties dropped; https://v2plus.hl7.org/2021Jan/index.html)."""
    return _join("^", parts)


def rep(*parts: Part) -> Encoded:
    """Join repetitions of a field with ``~`` (empty repetitions dropped; https://v2plus.hl7.org/2021Jan/index.html)."""
    return Encoded("~".join(p if type(p) is Encoded else p.translate(_TABLE) for p in parts if p))


def segment(name: str, *fields: Part, pad_to: int = 0) -> str:
    """Build one segment (without its terminator).

    Args:
        name: segment id, e.g. ``PID``; for ``MSH`` pass fields from MSH-3 on.
        *fields: field values from field 1 (MSH-3 for MSH); ``None`` or ``""`` for empty.
        pad_to: keep empty trailing fields up to this field number (a common sender quirk).

    Returns:
        The segment text. See https://v2plus.hl7.org/2021Jan/index.html (Control, segments).
    """
    values = [("" if not p else p if type(p) is Encoded else p.translate(_TABLE)) for p in fields]
    while values and not values[-1]:
        values.pop()
    offset = 2 if name == "MSH" else 0
    if len(values) + offset < pad_to:
        values.extend([""] * (pad_to - len(values) - offset))
    if name == "MSH":
        return "MSH|" + ENCODING_CHARACTERS + "|" + "|".join(values)
    return name + "|" + "|".join(values) if values else name


def ts(value: datetime, seconds: bool = True) -> str:
    """Format a DTM with its UTC offset, e.g. ``20250620092709-0500`` (v2.5.1 DTM/TS).

    Args:
        value: an aware datetime, or a naive one (no offset; naive midnight is a date).
        seconds: include seconds.

    Returns:
        The DTM string. See https://v2plus.hl7.org/2021Jan/index.html (data type DTM).
    """
    offset = value.utcoffset()
    if offset is None and (value.hour, value.minute, value.second) == (0, 0, 0):
        return value.strftime("%Y%m%d")  # a FHIR date: keep day precision
    text = value.strftime("%Y%m%d%H%M%S" if seconds else "%Y%m%d%H%M")
    if offset is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        text += f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    return text


def dt(value: date) -> str:
    """Format a DT (``YYYYMMDD``; https://v2plus.hl7.org/2021Jan/index.html)."""
    return value.strftime("%Y%m%d")


def number(value: float | int) -> str:
    """Format an NM value without exponent notation, shortest exact digits (https://v2plus.hl7.org/2021Jan/index.html)."""
    if isinstance(value, bool):
        raise TypeError("boolean is not a number")
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def mllp_frame(message: str) -> bytes:
    """Wrap one message (segments already ``\\r``-terminated) in an MLLP block.

    Args:
        message: the ER7 message text.

    Returns:
        ``\\x0b`` + UTF-8 bytes + ``\\x1c\\r``. See the MLLP transport specification,
        https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55 .
    """
    return MLLP_START + message.encode("utf-8") + MLLP_END
