"""Property tests of MLLP framing: any chunking, any garbage, frames come out whole."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cmio.interfaces.hl7v2.engine.mllp import FrameDecoder, frame

_BODY = st.binary(max_size=300).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))


@settings(max_examples=200, deadline=None)
@given(bodies=st.lists(_BODY, min_size=1, max_size=8), cuts=st.lists(st.integers(1, 64)))
def test_any_chunking_gives_the_same_frames(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(b) for b in bodies)
    decoder = FrameDecoder(max_frame_bytes=1 << 20)
    got: list[bytes] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        got += [e.data for e in decoder.feed(stream[pos : pos + cut]) if e.kind == "frame"]
        pos += cut
        if pos >= len(stream):
            break
    got += [e.data for e in decoder.feed(stream[pos:]) if e.kind == "frame"]
    assert got == bodies
    assert not decoder.partial


@settings(max_examples=200, deadline=None)
@given(noise=st.binary(max_size=400), body=_BODY, limit=st.integers(64, 512))
def test_garbage_never_crashes_and_the_next_frame_survives(
    noise: bytes, body: bytes, limit: int
) -> None:
    decoder = FrameDecoder(max_frame_bytes=limit)
    events = list(decoder.feed(noise))
    assert all(e.kind in ("frame", "garbage", "oversize", "truncated") for e in events)
    assert all(len(e.data) <= max(limit, 4096) for e in events if e.kind != "frame")
    # Whatever the noise left half-open, a fresh frame is delivered (after a report).
    tail = list(decoder.feed(b"\x1c\r" + frame(body)))
    frames = [e.data for e in tail if e.kind == "frame"]
    if len(body) <= limit:
        assert frames[-1] == body
    else:
        assert tail[-1].kind == "oversize"
