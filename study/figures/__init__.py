"""The figures, drawn from results files only: ``catalog`` (the registry, and drawing every figure
whose summary exists), ``style`` (palette and saving as PNG and PDF), and one module per figure
family (``accuracy``, ``solutions``, ``scaling``, ``forcing``, ``depth``, ``compute``).

May import: report, analysis and the top-level study modules.
"""
