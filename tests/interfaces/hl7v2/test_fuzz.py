"""Property-based fuzzing of the parser: no crash, no hang; parsed or rejected with a reason."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmio.interfaces.hl7v2 import Message, ParseError, escape, parse, unescape

VALID = (
    "MSH|^~\\&|APP|FAC|R|RF|20250101||ADT^A01|1|P|2.5.1\r"
    "PID|1||42^^^H&1.2&ISO^MR~7^^^SSA^SS||Doe^J\\S\\x||19800101|F\r"
    "OBX|1|ST|c^d^LN||t\\.br\\x\\Xe9\\|||\rZZZ|a|b\r"
)
ALPHABET = st.sampled_from(list("|^~\\&#MSHPIDOBXZ019 \r\n\x0b\x1c\x00\ufeffA.brXFSTRE\u00e9"))


def _exercise(message: Message) -> None:
    """Read everything the engine and the mapper may read."""
    _ = (message.control_id, message.message_type, message.version, message.sending)
    for seg in message:
        for n in range(1, len(seg) + 1):
            field = seg.field(n)
            for rep in field.repetitions:
                for comp in rep.components:
                    comp.subcomponents  # noqa: B018
            seg.get(n, 2, 3, 2)
    message.encode()


def _check(data: bytes | str, strict: bool) -> None:
    start = time.perf_counter()
    try:
        message = parse(data, strict=strict)
    except ParseError as err:
        assert err.reason
        assert str(err)
    else:
        _exercise(message)
        assert parse(message.encode()).names == message.names
    assert time.perf_counter() - start < 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes(data: bytes, strict: bool) -> None:
    _check(data, strict)
    _check(b"MSH|^~\\&|" + data, strict)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=300), st.booleans())
def test_hl7_like_text(text: str, strict: bool) -> None:
    _check(text, strict)
    _check("MSH|^~\\&|" + text, strict)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID)), st.integers(0, len(VALID)), st.text(ALPHABET, max_size=5))
def test_mutated_valid_message(cut: int, at: int, insert: str) -> None:
    truncated = VALID[:cut]
    _check(truncated, strict=True)
    _check(VALID[:at] + insert + VALID[at:], strict=True)
    _check((VALID[:at] + insert + VALID[at:]).encode("utf-8"), strict=False)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_escape_round_trips_through_a_message(value: str) -> None:
    text = f"MSH|^~\\&|A\rNTE|1||{escape(value)}\r"
    assert parse(text, strict=True).value("NTE-3") == value
    assert unescape(escape(value)) == value
