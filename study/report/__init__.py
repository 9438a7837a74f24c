"""What a user reads: console tables (``console``, ``forcing_output``), one-sentence findings
(``findings``), the markdown report (``markdown``, ``depth_report``) and the same report as one
HTML page with a browser of every problem's rollout (``html_page``, ``html_data``; its styles and
script in ``assets/``). Reads the results store only.

May import: analysis, annotation (the TSVs, read only) and the top-level study modules.
"""
