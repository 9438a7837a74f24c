"""The study: everything that knows about tasks, budgets and results, and nothing of how
tokens are generated (that is ``engine``, reached through ``utils``).

Packages, from the entry scripts down (each imports only those below it):

- ``run``: run, resume or reuse one generating phase; shards and their merge; the depth sweep.
- ``strategies``: ways of spending test-time compute, behind one protocol, and the rollout
  logs they share. The only package that calls the engine.
- ``annotation``: phase 2's TSVs, work queue, labelling session and error analysis.
- ``figures``: the figure registry, the shared style, one module per figure family.
- ``report``: console tables, findings, the markdown report.
- ``analysis``: statistics, intervals, fits, emergence, plateau, cliff, structure, compute.
- ``data``: datasets, problems, gold-answer checks, the safe arithmetic parser.
- ``grading``: answer extraction and equivalence per answer kind, majority votes.

Modules at this level are shared by all of them: ``cli`` (flags from the config),
``config_mapping``, ``errors``, ``grid``, ``results`` (reading a study back), ``schema`` and
``schema_analyses`` (the one typed schema), ``shards`` (which shard this process runs),
``store`` (the results store) and ``tables`` (numbers to text).
"""
