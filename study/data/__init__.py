"""Problems and where they come from: the dataset registry (``datasets``), hub rows
(``hub_data``), problem files (``problems``), gold-answer checks (``gold_check``), and the
safe arithmetic parser and step checker (``arith_parse``, ``arith_check``). Pure apart from
reading files.

May import: grading and the top-level study modules (errors, store).
"""
