"""The standing reliability suite: bad inputs, faults and races, each a clear error and no state
change. ``tools/reliability_report.py`` turns a run's results into ``docs/reliability.md``."""
