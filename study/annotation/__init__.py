"""study.annotation."""
