"""study.analysis."""
