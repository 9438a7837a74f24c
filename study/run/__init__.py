"""Running a generating phase: ``runner`` (run, resume or reuse a phase through the strategy the
config names), ``phase_run`` (its graded records, summary and files), ``sharding`` (a phase run
as shards and merged) and ``depth_sweep`` (phase 1 once per number of layers kept).

May import: strategies, analysis, data, grading and the top-level study modules. Imported only
by the entry scripts.
"""
