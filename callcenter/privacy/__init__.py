"""152-ФЗ hygiene: retention of recordings and transcripts, and "forget me".

``retention.run_retention`` deletes recordings and transcripts older than ``RETENTION_DAYS``;
``forget.forget_phone`` removes one person's data and anonymizes their calls. Both keep the
calls themselves (counts, dispositions, durations) for the reports, both say what they deleted,
and both leave an entry in the audit log. The do-not-call list (hashes) is never touched.
"""
