"""What a user reads: console tables (``console``, ``forcing_output``), one-sentence findings
(``findings``), and the markdown report (``markdown``, ``depth_report``). Reads summaries only.

May import: analysis and the top-level study modules.
"""
