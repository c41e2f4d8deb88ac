"""The HL7 v2 interface engine: MLLP and folder sources, a durable journal, channels.

Messages arrive over MLLP (:mod:`.mllp`, :mod:`.server`) or a folder drop, are written
to a durable journal (:mod:`.journal`) before the ACK (:mod:`.ack`), then processed
exactly once, in order per patient, by the channel's filters, mapping and destinations
(:mod:`.processor`, :mod:`.batch`, :mod:`.channels`, :mod:`.channeltypes`). Interface
health comes from the journal (:mod:`.metrics`).
"""

__all__: list[str] = []
