"""HL7 v2 interfaces: a fast lazy parser (v2.3 to v2.8.2) and the map to FHIR R4.

* :func:`parse` turns one ER7 message (bytes or text) into a :class:`Message`
  (HL7 v2 chapter 2, https://v2plus.hl7.org/2021Jan/index.html ).
* :func:`split_messages` splits a file or batch into messages.
* :mod:`cmio.interfaces.hl7v2.mapping` maps a message to a FHIR R4 transaction Bundle by the
  HL7 V2-to-FHIR IG (https://build.fhir.org/ig/HL7/v2-to-fhir/ ).
"""

from cmio.interfaces.hl7v2.errors import ParseError
from cmio.interfaces.hl7v2.escape import escape, unescape
from cmio.interfaces.hl7v2.message import (
    Component,
    Delimiters,
    Field,
    Message,
    MessageType,
    Repetition,
    Segment,
    message_structure,
)
from cmio.interfaces.hl7v2.parser import SUPPORTED_VERSIONS, charset_codec, parse, split_messages

__all__ = [
    "SUPPORTED_VERSIONS",
    "Component",
    "Delimiters",
    "Field",
    "Message",
    "MessageType",
    "ParseError",
    "Repetition",
    "Segment",
    "charset_codec",
    "escape",
    "message_structure",
    "parse",
    "split_messages",
    "unescape",
]
