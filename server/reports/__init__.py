"""PDF reports (WeasyPrint, Jinja2 templates in templates/) built from the statistics."""
