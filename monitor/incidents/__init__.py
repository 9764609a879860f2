"""The clinic's records of complications: emergency protocols as the interlock's halts map
them, incident records, follow-ups and patient information sheets, kept as record streams in
the session log's chain.

``protocols`` (the book, checked against the halt causes) · ``incidents`` (``IncidentBook``)
· ``followups`` (``FollowUps``) · ``photos`` (by content hash) · ``sheets`` · ``trace`` (the
settings and skin temperature around a halt, from the log) · ``streams`` (ids, times) ·
``clinic`` (``ClinicRecords``: all of it over one log) · ``hook`` (``IncidentRecorder``: a
session's recorder that opens drafts on halts and records the sheets given) · ``errors``.
Imports the core and the record, never the reports, the CLI or the console (see
docs/incidents.md).
"""
