"""Errors raised while parsing HL7 v2 messages.

A :class:`ParseError` names where the problem is: the segment (id and 1-based line number),
the field number and the character position in the message text, so a NACK (ERR segment,
HL7 v2.5.1 chapter 2 section 2.15.5, https://v2plus.hl7.org/2021Jan/index.html) can point at it.
"""

from __future__ import annotations

__all__ = ["ParseError"]


class ParseError(ValueError):
    """A message that cannot be parsed, with the place of the problem.

    Attributes:
        segment: segment id (``"MSH"``, ``"PID"``...) or ``None`` when no segment applies.
        segment_index: 1-based number of the segment in the message, or ``None``.
        field: 1-based field number (HL7 numbering: ``MSH-1`` is the field separator), or ``None``.
        position: 0-based character offset in the (decoded) message text, or ``None``.
        reason: what is wrong, in words.

    See https://v2plus.hl7.org/2021Jan/index.html (Control, acknowledgment error codes).
    """

    def __init__(
        self,
        reason: str,
        *,
        segment: str | None = None,
        segment_index: int | None = None,
        field: int | None = None,
        position: int | None = None,
    ) -> None:
        self.reason = reason
        self.segment = segment
        self.segment_index = segment_index
        self.field = field
        self.position = position
        super().__init__(self._describe())

    def _describe(self) -> str:
        where: list[str] = []
        if self.segment is not None:
            name = self.segment
            if self.field is not None:
                name = f"{name}-{self.field}"
            where.append(name)
        elif self.field is not None:
            where.append(f"field {self.field}")
        if self.segment_index is not None:
            where.append(f"segment {self.segment_index}")
        if self.position is not None:
            where.append(f"position {self.position}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (self.reason, self.segment, self.segment_index, self.field, self.position),
        )


def _rebuild(
    reason: str,
    segment: str | None,
    segment_index: int | None,
    field: int | None,
    position: int | None,
) -> ParseError:
    return ParseError(
        reason, segment=segment, segment_index=segment_index, field=field, position=position
    )
