"""HL7 v2.5.1 feeds (ADT, ORU^R01, VXU^V04) from the synthetic health system.

``write_feeds(Path("synth-out"), Path("feeds"), seed=1)`` reads a ``cmio synth``
NDJSON folder and writes the messages in time order; see :mod:`cmio.synth.hl7v2.feed`
for the events, quirks and file layout, https://v2plus.hl7.org/2021Jan/index.html for
the standard and https://build.fhir.org/ig/HL7/v2-to-fhir/ for the maps used in reverse.
"""

from cmio.synth.hl7v2.encode import escape, mllp_frame, unescape
from cmio.synth.hl7v2.feed import FeedMessage, FeedSummary, iter_messages, write_feeds

__all__ = [
    "FeedMessage",
    "FeedSummary",
    "escape",
    "iter_messages",
    "mllp_frame",
    "unescape",
    "write_feeds",
]
