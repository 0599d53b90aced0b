"""Running Kerma: its settings checked before anything starts, health and metrics, backups."""
