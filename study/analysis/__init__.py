"""The numbers behind every finding: statistics and intervals (``stats``, ``intervals``,
``comparisons``), curve fits and emergence (``fits``, ``emergence``, ``scaling``), the plateau
(phase 1b), the cliff and solution structure (phase 3), continuous metrics, the compute-matched
comparison.

Reads records and summaries (``study.schema``); never a model. May import: grading, data and the
top-level study modules.
"""
