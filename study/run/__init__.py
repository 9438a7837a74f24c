"""study.run."""
