"""study.report.markdown."""
