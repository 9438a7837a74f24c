"""study.data."""
