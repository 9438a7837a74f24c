"""study.strategies.base."""
