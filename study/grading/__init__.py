"""Grading answers, pure and table-tested: ``grader.grade`` picks the answer kind's rules;
``numeric`` (GSM8K-style numbers, and the text helpers every kind shares), ``latex`` (the
``latex`` and ``choice`` kinds), ``majority`` (maj@k over sample subsets).

Imports nothing of the study but ``errors``.
"""
