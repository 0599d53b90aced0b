"""Notifications of DetectedIssues: routed by FHIR Subscriptions, queued as Communications in
the issue's transaction, delivered by e-mail (SMTP) or rest-hook with retries."""
