"""Patient identity over time: merges and their undoing, identifier changes, moving a
study to another patient, and a patient's whole record ($everything)."""
