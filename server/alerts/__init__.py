"""Alerts: DetectedIssues for values above DRLs, alert levels and significant-event rules,
and the daily monitoring (medians above DRLs, parameter drift, repeated examinations)."""
