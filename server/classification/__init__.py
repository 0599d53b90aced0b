"""Classification of studies and acquisitions to standard procedures: the rules as a
FHIR Library edited over the API, and classifying stored studies again."""
