"""What the experiment scripts share, imported by them and never a script imported by a script.

- :mod:`~experiments.harness.cli`: arguments from dataclasses, run folders, JSON, tables, errors.
- :mod:`~experiments.harness.wiring`: prior, budget, planner settings and policy for a task.
- :mod:`~experiments.harness.episodes`: the episode loop and the summary of a run.
- :mod:`~experiments.harness.drawing`: pictures of planner output (GIFs, episode plots).
"""
