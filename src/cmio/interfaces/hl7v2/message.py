"""Parsed HL7 v2 messages: segments, fields, repetitions, components, subcomponents.

The ER7 ("pipe and hat") structure of HL7 v2.3 to v2.8.2, chapter 2 (Control), section 2.5
"Message construction rules", https://v2plus.hl7.org/2021Jan/index.html . Everything is lazy:
a :class:`Message` holds its segments as text, a :class:`Segment` splits its fields the first
time one is read, and escape sequences are decoded only when a value is read
(:mod:`cmio.interfaces.hl7v2.escape`). Numbering follows HL7: fields, repetitions,
components and subcomponents count from 1, and ``MSH-1`` is the field separator itself.

``"..."`` paths (:meth:`Message.value`) read ``SEG[occurrence]-field(repetition).component.sub``,
e.g. ``"PID-3(2).4"`` or ``"OBX[2]-5"``; omitted parts default to 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import MappingProxyType
from typing import NamedTuple

from cmio.interfaces.hl7v2.escape import unescape
from cmio.interfaces.hl7v2.fields import Component, Field, Repetition

__all__ = [
    "Component",
    "Delimiters",
    "Field",
    "Message",
    "MessageType",
    "Repetition",
    "Segment",
    "message_structure",
]

_PATH = re.compile(
    r"^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\((\d+)\))?(?:\.(\d+)(?:\.(\d+))?)?)?$"
)

# HL7 Table 0354 (message structure) for trigger events that share a structure; others are
# CODE_EVENT. https://v2plus.hl7.org/2021Jan/index.html (Control, Table 0354)
_SHARED_STRUCTURES = MappingProxyType(
    {
        "ADT": {
            **dict.fromkeys(("A01", "A04", "A08", "A13"), "ADT_A01"),
            **dict.fromkeys(("A05", "A14", "A28", "A31"), "ADT_A05"),
            **dict.fromkeys(("A06", "A07"), "ADT_A06"),
            **dict.fromkeys(("A09", "A10", "A11"), "ADT_A09"),
            **dict.fromkeys(("A12",), "ADT_A12"),
            **dict.fromkeys(
                ("A21", "A22", "A23", "A25", "A26", "A27", "A29", "A32", "A33"), "ADT_A21"
            ),
            **dict.fromkeys(("A39", "A40", "A41", "A42"), "ADT_A39"),
            **dict.fromkeys(("A43", "A44"), "ADT_A43"),
        },
        "SIU": dict.fromkeys([f"S{n}" for n in range(12, 27)], "SIU_S12"),
        "MDM": {
            **dict.fromkeys(("T01", "T03", "T05", "T07", "T09", "T11"), "MDM_T01"),
            **dict.fromkeys(("T02", "T04", "T06", "T08", "T10"), "MDM_T02"),
        },
    }
)


def message_structure(code: str, event: str) -> str:
    """The message structure (MSH-9.3) for a message code and trigger event.

    Args:
        code: MSH-9.1, e.g. ``ADT``.
        event: MSH-9.2, e.g. ``A08``.

    Returns:
        The structure id from HL7 Table 0354 (``ADT^A08`` -> ``ADT_A01``), ``ACK`` for
        acknowledgements, else ``CODE_EVENT``. See https://v2plus.hl7.org/2021Jan/index.html .
    """
    if code == "ACK":
        return "ACK"
    found = _SHARED_STRUCTURES.get(code, {}).get(event)
    if found is not None:
        return found
    return f"{code}_{event}" if event else code


class Delimiters(NamedTuple):
    """The delimiters a message defines in MSH-1 and MSH-2 (HL7 v2 section 2.5.4).

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def chars(self) -> str:
        """Field, component, repetition, escape, subcomponent (and truncation) as one string."""
        return (
            self.field
            + self.component
            + self.repetition
            + self.escape
            + self.subcomponent
            + self.truncation
        )


class MessageType(NamedTuple):
    """MSH-9: message code, trigger event and message structure (derived when not sent).

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    code: str
    event: str
    structure: str


class Segment:
    """One segment; fields are split the first time one is read.

    Attributes:
        name: the segment id (``PID``, ``ZPI``...).
        raw: the segment text without its terminator.
        index: 1-based position of the segment in the message.

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    __slots__ = ("_charset", "_delims", "_fields", "index", "name", "raw")

    def __init__(self, raw: str, name: str, delims: str, charset: str, index: int) -> None:
        self.raw = raw
        self.name = name
        self.index = index
        self._delims = delims
        self._charset = charset
        self._fields: list[str] | None = None

    @property
    def fields(self) -> list[str]:
        """The raw (still escaped) fields; ``fields[n]`` is field ``n``, ``fields[0]`` the name."""
        fields = self._fields
        if fields is None:
            fs = self._delims[0]
            fields = self.raw.split(fs)
            if self.name == "MSH":
                fields.insert(1, fs)
            self._fields = fields
        return fields

    def __len__(self) -> int:
        """The number of the last field present."""
        return len(self.fields) - 1

    def raw_field(self, n: int) -> str:
        """Field ``n`` as it appears in the message (escapes not decoded); ``""`` when absent."""
        fields = self._fields
        if fields is None:
            fields = self.fields
        return fields[n] if 0 < n < len(fields) else ""

    def field(self, n: int) -> Field:
        """Field ``n`` (1-based); an empty field when absent."""
        literal = self.name == "MSH" and n <= 2
        return Field(self.raw_field(n), self._delims, self._charset, literal)

    def get(self, n: int, repetition: int = 1, component: int = 1, subcomponent: int = 1) -> str:
        """The decoded text at ``SEG-n(repetition).component.subcomponent``; ``""`` when absent."""
        fields = self._fields
        if fields is None:
            fields = self.fields
        raw = fields[n] if 0 < n < len(fields) else ""
        if not raw:
            return ""
        if self.name == "MSH" and n <= 2:
            return raw if repetition == component == subcomponent == 1 else ""
        d = self._delims
        if repetition != 1 or d[2] in raw:
            parts = raw.split(d[2])
            raw = parts[repetition - 1] if 0 < repetition <= len(parts) else ""
        if component != 1 or d[1] in raw:
            parts = raw.split(d[1])
            raw = parts[component - 1] if 0 < component <= len(parts) else ""
        if subcomponent != 1 or d[4] in raw:
            parts = raw.split(d[4])
            raw = parts[subcomponent - 1] if 0 < subcomponent <= len(parts) else ""
        if d[3] in raw:
            return unescape(raw, d, self._charset)
        return raw

    def texts(self, n: int, repetition: int = 1) -> list[str]:
        """The decoded first subcomponent of each component of ``SEG-n(repetition)``.

        The fast path for composite values (CWE, EI, XPN...): no objects, one split per level;
        ``[]`` when the field or repetition is absent or empty.
        """
        raw = self.raw_field(n)
        if not raw or (self.name == "MSH" and n <= 2):
            return [raw] if raw else []
        d = self._delims
        if repetition != 1 or d[2] in raw:
            parts = raw.split(d[2])
            raw = parts[repetition - 1] if 0 < repetition <= len(parts) else ""
            if not raw:
                return []
        out = raw.split(d[1])
        sub, esc = d[4], d[3]
        if sub in raw or esc in raw:
            for i, part in enumerate(out):
                if sub in part:
                    part = part.split(sub, 1)[0]
                    out[i] = part
                if esc in part:
                    out[i] = unescape(part, d, self._charset)
        return out

    def repetitions(self, n: int) -> list[Repetition]:
        """The repetitions of field ``n`` (none when the field is empty)."""
        return self.field(n).repetitions

    def __repr__(self) -> str:
        return f"Segment({self.raw[:60]!r})"


class Message:
    """A parsed HL7 v2 message (use :func:`cmio.interfaces.hl7v2.parse` to build one).

    Attributes:
        delimiters: the delimiters from MSH-1 and MSH-2.
        charset: Python codec name for the message character set (MSH-18; UTF-8 by default).

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    __slots__ = ("_by_name", "_chars", "_names", "_raw", "_segments", "charset", "delimiters")

    def __init__(
        self, raw_segments: list[str], names: list[str], delimiters: Delimiters, charset: str
    ) -> None:
        self._raw = raw_segments
        self._names = names
        self.delimiters = delimiters
        self._chars = delimiters.chars
        self.charset = charset
        by_name: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            found = by_name.get(name)
            if found is None:
                by_name[name] = [i]
            else:
                found.append(i)
        self._by_name = by_name
        self._segments: list[Segment | None] = [None] * len(raw_segments)

    def _segment_at(self, i: int) -> Segment:
        seg = self._segments[i]
        if seg is None:
            seg = Segment(self._raw[i], self._names[i], self._chars, self.charset, i + 1)
            self._segments[i] = seg
        return seg

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[Segment]:
        for i in range(len(self._raw)):
            yield self._segment_at(i)

    def __getitem__(self, name: str) -> list[Segment]:
        return self.segments(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        """The segment ids in message order."""
        return list(self._names)

    def segments(self, name: str | None = None) -> list[Segment]:
        """All segments, or those with id ``name``, in message order."""
        if name is None:
            return list(self)
        return [self._segment_at(i) for i in self._by_name.get(name, ())]

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        """Occurrence ``occurrence`` (1-based) of segment ``name``, or ``None``."""
        found = self._by_name.get(name)
        if found is None or not 0 < occurrence <= len(found):
            return None
        return self._segment_at(found[occurrence - 1])

    def value(self, path: str) -> str:
        """The decoded text at a path such as ``"PID-3(1).1"`` or ``"OBX[2]-5"``.

        Args:
            path: ``SEG[occurrence]-field(repetition).component.subcomponent``.

        Returns:
            The value, ``""`` when absent. A path with no field gives the segment id if the
            segment is present.

        Raises:
            ValueError: the path is malformed.
        """
        match = _PATH.match(path)
        if match is None:
            raise ValueError(f"malformed HL7 v2 path {path!r} (expected e.g. 'PID-3(1).1')")
        name, occ, fld, rep, comp, sub = match.groups()
        seg = self.segment(name, int(occ or 1))
        if seg is None:
            return ""
        if fld is None:
            return seg.name
        return seg.get(int(fld), int(rep or 1), int(comp or 1), int(sub or 1))

    def _msh(self) -> Segment:
        return self._segment_at(0)

    @property
    def control_id(self) -> str:
        """MSH-10, the message control id."""
        return self._msh().get(10)

    @property
    def message_type(self) -> MessageType:
        """MSH-9 as (code, event, structure); the structure follows Table 0354 when not sent."""
        msh = self._msh()
        code, event, structure = msh.get(9, 1, 1), msh.get(9, 1, 2), msh.get(9, 1, 3)
        return MessageType(code, event, structure or message_structure(code, event))

    @property
    def version(self) -> str:
        """MSH-12.1, the version id (``2.3`` ... ``2.8.2``)."""
        return self._msh().get(12)

    @property
    def sending_application(self) -> str:
        """MSH-3.1."""
        return self._msh().get(3)

    @property
    def sending_facility(self) -> str:
        """MSH-4.1."""
        return self._msh().get(4)

    @property
    def receiving_application(self) -> str:
        """MSH-5.1."""
        return self._msh().get(5)

    @property
    def receiving_facility(self) -> str:
        """MSH-6.1."""
        return self._msh().get(6)

    @property
    def sending(self) -> tuple[str, str]:
        """(MSH-3.1, MSH-4.1): sending application and facility."""
        return self.sending_application, self.sending_facility

    @property
    def receiving(self) -> tuple[str, str]:
        """(MSH-5.1, MSH-6.1): receiving application and facility."""
        return self.receiving_application, self.receiving_facility

    @property
    def timestamp(self) -> str:
        """MSH-7.1, the date/time of the message as sent (DTM text)."""
        return self._msh().get(7)

    @property
    def processing_id(self) -> str:
        """MSH-11.1 (``P`` production, ``T`` training, ``D`` debugging)."""
        return self._msh().get(11)

    def encode(self, terminator: str = "\r") -> str:
        """The message as ER7 text, each segment ended by ``terminator`` (CR by default)."""
        return terminator.join(self._raw) + terminator

    def __repr__(self) -> str:
        t = self.message_type
        return f"Message({t.code}^{t.event} {self.control_id!r}, {len(self)} segments)"
