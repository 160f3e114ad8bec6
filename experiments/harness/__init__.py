"""What the experiment scripts share, imported by them and never a script imported by a script.

- :mod:`~experiments.harness.cli`: arguments from dataclasses, run folders, JSON, tables, errors.
- A run's setup (task, planner, budget, prior, reward, seed) and its policy are
  :class:`policies.setup.PlanningSetup`, shared with code that plans from Python.
- :mod:`~experiments.harness.episodes`: the episode loop and the summary of a run.
- :mod:`~experiments.harness.grid`: the evaluation grid, one resumable episode at a time.
- :mod:`~experiments.harness.statistics`: t and Wilson intervals, paired differences.
- :mod:`~experiments.harness.summary`: per-row intervals and paired comparisons of a grid.
- :mod:`~experiments.harness.report`: an evaluation's results.md; :mod:`~experiments.harness.plots`
  its plots.
- :mod:`~experiments.harness.drawing`: pictures of planner output (GIFs, episode plots).
"""
