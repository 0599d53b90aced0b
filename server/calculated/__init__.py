"""Dose Kerma calculates (effective dose, SSDE, peak skin dose) as Observations of their
own, and the skin dose map as a picture."""
