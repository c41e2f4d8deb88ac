"""The mapping never crashes: any parsable message maps (to structurally valid resources, so
garbage in an optional field never blocks the message) or is refused with a MappingError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmio.interfaces.hl7v2 import ParseError, parse
from cmio.interfaces.hl7v2.mapping import MappingError, MappingOptions, map_message
from cmio.model import Model
from cmio.validation import validate_structure
from tests.interfaces.hl7v2.mapping.samples import ALL

NAMES = sorted(ALL)
JUNK = st.text(alphabet=st.sampled_from(list("^~&\\|X01.-+:<>= \taZ\u00e9\\F\\S\\")), max_size=12)


def _mutate(text: str, segment: int, field: int, value: str) -> str:
    lines = text.replace("\n", "\r").split("\r")
    lines = [line for line in lines if line]
    seg = lines[segment % len(lines)].split("|")
    if seg[0] == "MSH" and field < 12:
        field += 12  # keep MSH-1..MSH-12 (delimiters, type, version) intact
    while len(seg) <= field:
        seg.append("")
    seg[field] = value
    lines[segment % len(lines)] = "|".join(seg)
    return "\r".join(lines) + "\r"


def test_mutated_samples_map_or_are_refused(model: Model) -> None:
    # The model is closed over, not a hypothesis argument: reporting a failing example
    # would otherwise pretty-print the whole R4 model.
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.sampled_from(NAMES),
        st.lists(st.tuples(st.integers(0, 20), st.integers(1, 45), JUNK), min_size=1, max_size=6),
        st.booleans(),
    )
    def check(name: str, edits: list[tuple[int, int, str]], provenance: bool) -> None:
        text = ALL[name]
        for segment, field, value in edits:
            text = _mutate(text, segment, field, value)
        try:
            message = parse(text)
        except ParseError:
            return
        try:
            result = map_message(message, MappingOptions(provenance=provenance))
        except MappingError as err:
            assert err.reason
            return
        assert result.bundle["resourceType"] == "Bundle"
        for entry in result.bundle["entry"]:
            issues = validate_structure(model, entry["resource"])
            assert not issues, (entry["resource"]["resourceType"], [str(i) for i in issues])

    check()
