"""Ways of spending test-time compute, behind the ``base.ComputeStrategy`` protocol:
``truncation`` (the baseline), ``forcing`` and ``forcing_rollouts`` (budget forcing), ``power``
(power sampling); ``registry`` maps a config to one of them; ``rollouts`` keeps the rollout logs
they share; ``lens`` reads stored rollouts through the logit lens.

The one package that calls the engine (through ``utils``). May import: analysis, data,
grading and the top-level study modules; never ``study.run``.
"""
