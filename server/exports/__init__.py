"""Patient-level data out of Kerma: FHIR Bulk Data $export and the dose-facts CSV/XLSX,
identified or pseudonymised."""
