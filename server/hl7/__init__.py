"""HL7 v2 in: MLLP framing and listener, message access, ACKs, the inbox, and what ADT and
order messages say (applied by server/ingest/hl7.py)."""
