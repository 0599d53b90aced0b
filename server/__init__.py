"""Kerma: a FHIR-native radiation dose management server (import package `server`, CLI `kerma`)."""

__version__ = "0.1.0"
