"""The mapping's direct UUID helpers give what the :mod:`uuid` module gives."""

from __future__ import annotations

import random
import uuid

from cmio.interfaces.hl7v2.mapping.context import MapContext, MappingOptions, name_uuid, uuid_text
from cmio.interfaces.hl7v2.mapping.values import datetime
from cmio.interfaces.hl7v2.parser import parse


def test_name_uuid_is_uuid5() -> None:
    rng = random.Random(8)
    namespace = uuid.UUID("3c5b8f0e-2a7d-4f4e-8d61-9b0f6a2c7e14")
    names = ["", "Observation?identifier=urn:x|1", "é|ü~ß", "\x00"]
    names += ["".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(40)))
              for _ in range(500)]  # fmt: skip
    for name in names:
        assert name_uuid(namespace.bytes, name) == str(uuid.uuid5(namespace, name))


def test_uuid_text_is_str_of_uuid() -> None:
    rng = random.Random(9)
    for value in [0, 1, (1 << 128) - 1, *(rng.getrandbits(128) for _ in range(500))]:
        assert uuid_text(value) == str(uuid.UUID(int=value))


def test_datetime_repeats_issues_for_invalid_values_and_reuses_valid_ones() -> None:
    ctx = MapContext(parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5\rPID|1\r"),
                     MappingOptions())  # fmt: skip
    assert datetime(ctx, "20240101115900", "OBX[1]-14") == datetime(ctx, "20240101115900", "x")
    assert datetime(ctx, "20240230", "OBX[1]-14") is None
    assert datetime(ctx, "20240230", "OBX[2]-14") is None
    assert [i.split(":")[0] for i in ctx.issues] == ["OBX[1]-14", "OBX[2]-14"]
