"""What Kerma sends out: dose results to the RIS (HL7 v2 ORU^R01), received RDSRs forwarded to
registries and PACS (C-STORE), dose summaries pushed to an EHR (FHIR). Each message is a
Communication queued in the transaction that stored the study, and sent by the same
dispatcher and retry policy as notifications (server/notify/delivery.py)."""
