"""Field values of an HL7 v2 message: fields, repetitions, components, subcomponents.

HL7 v2.5.1 chapter 2 section 2.5 "Message construction rules"
(https://v2plus.hl7.org/2021Jan/index.html ): a field holds repetitions separated by the
repetition character, a repetition holds components, a component holds subcomponents.
Values are split when read and escape sequences decoded only for the text returned.
"""

from __future__ import annotations

from collections.abc import Iterator

from cmio.interfaces.hl7v2.escape import unescape

__all__ = ["Component", "Field", "Repetition"]


class Component:
    """One component: its subcomponents, decoded on read.

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    __slots__ = ("_charset", "_delims", "raw")

    def __init__(self, raw: str, delims: str, charset: str) -> None:
        self.raw = raw
        self._delims = delims
        self._charset = charset

    @property
    def subcomponents(self) -> list[str]:
        """The decoded subcomponents (at least one, possibly empty)."""
        d = self._delims
        return [unescape(s, d, self._charset) for s in self.raw.split(d[4])]

    def subcomponent(self, n: int) -> str:
        """Subcomponent ``n`` (1-based), decoded; ``""`` when absent."""
        parts = self.raw.split(self._delims[4])
        return unescape(parts[n - 1], self._delims, self._charset) if 0 < n <= len(parts) else ""

    @property
    def value(self) -> str:
        """The first subcomponent, decoded."""
        return self.subcomponent(1)

    def as_repetition(self) -> Repetition:
        """This component read as a value whose components are its subcomponents.

        For a composite nested in one component (EIP's EI parts, SPS.1's CWE).
        """
        d = self._delims
        return Repetition(d[1].join(self.raw.split(d[4])), d, self._charset)

    def __str__(self) -> str:
        return self.raw

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __repr__(self) -> str:
        return f"Component({self.raw!r})"


class Repetition:
    """One repetition of a field: its components.

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    __slots__ = ("_charset", "_delims", "raw")

    def __init__(self, raw: str, delims: str, charset: str) -> None:
        self.raw = raw
        self._delims = delims
        self._charset = charset

    @property
    def components(self) -> list[Component]:
        """The components (at least one, possibly empty)."""
        d, c = self._delims, self._charset
        return [Component(p, d, c) for p in self.raw.split(d[1])]

    def component(self, n: int) -> Component:
        """Component ``n`` (1-based); an empty component when absent."""
        parts = self.raw.split(self._delims[1])
        return Component(parts[n - 1] if 0 < n <= len(parts) else "", self._delims, self._charset)

    def get(self, component: int = 1, subcomponent: int = 1) -> str:
        """The decoded text at ``component.subcomponent``; ``""`` when absent."""
        return self.component(component).subcomponent(subcomponent)

    def texts(self) -> list[str]:
        """The first subcomponent of every component, decoded (one pass; composites' usual view)."""
        d, charset = self._delims, self._charset
        sub, esc = d[4], d[3]
        out = self.raw.split(d[1])
        for i, part in enumerate(out):
            if sub in part:
                part = part.split(sub, 1)[0]
                out[i] = part
            if esc in part:
                out[i] = unescape(part, d, charset)
        return out

    @property
    def value(self) -> str:
        """The first subcomponent of the first component, decoded."""
        return self.get()

    def __str__(self) -> str:
        return self.raw

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __repr__(self) -> str:
        return f"Repetition({self.raw!r})"


class Field:
    """One field: its repetitions. ``MSH-1`` and ``MSH-2`` are literal (never split).

    See https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """

    __slots__ = ("_charset", "_delims", "literal", "raw")

    def __init__(self, raw: str, delims: str, charset: str, literal: bool = False) -> None:
        self.raw = raw
        self._delims = delims
        self._charset = charset
        self.literal = literal

    @property
    def repetitions(self) -> list[Repetition]:
        """The repetitions; none for an empty field."""
        if not self.raw:
            return []
        d, c = self._delims, self._charset
        if self.literal:
            return [Repetition(self.raw, "\x00" * 5, c)]
        return [Repetition(p, d, c) for p in self.raw.split(d[2])]

    def repetition(self, n: int) -> Repetition:
        """Repetition ``n`` (1-based); an empty repetition when absent."""
        if n == 1 and not self.literal and self._delims[2] not in self.raw:
            return Repetition(self.raw, self._delims, self._charset)
        reps = self.repetitions
        if 0 < n <= len(reps):
            return reps[n - 1]
        return Repetition("", self._delims, self._charset)

    def get(self, repetition: int = 1, component: int = 1, subcomponent: int = 1) -> str:
        """The decoded text at ``(repetition).component.subcomponent``; ``""`` when absent."""
        if self.literal:
            return self.raw if repetition == component == subcomponent == 1 else ""
        return self.repetition(repetition).get(component, subcomponent)

    @property
    def value(self) -> str:
        """The first subcomponent of the first component of the first repetition, decoded."""
        return self.get()

    @property
    def is_null(self) -> bool:
        """True for the explicit null ``""`` (delete the value in the receiver)."""
        return self.raw == '""'

    def __str__(self) -> str:
        return self.raw

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __len__(self) -> int:
        return len(self.repetitions)

    def __iter__(self) -> Iterator[Repetition]:
        return iter(self.repetitions)

    def __repr__(self) -> str:
        return f"Field({self.raw!r})"
