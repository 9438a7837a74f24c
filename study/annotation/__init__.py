"""Phase 2, the error annotation: the TSV format (``tsv``), which rows to label and their
suggestions (``queue``), the terminal labelling session (``labelling``) and the error taxonomy
(``error_analysis``).

May import: analysis, data, grading and the top-level study modules.
"""
