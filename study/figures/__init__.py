"""study.figures.catalog."""
