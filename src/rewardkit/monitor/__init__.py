"""Monitoring the served reward: its distribution over time per model version and route, drift against the
model's own reference distribution, rule checks for cron and CI, and the over-optimization alarm.

    reference.py  the reference distribution (fitted at training time, or a normal from mean/std) and binning
    series.py     score aggregates rolled into windows: count, mean, quantiles, PSI/KS, uncertainty, length
    alarms.py     the over-optimization alarm on RL traffic (/get_reward)
    rules.py      TOML threshold rules and their check (``rewardkit monitor check``)
    report.py     report.json / report.md / report.html with a PNG time series per model version

Run ``rewardkit monitor --help``; ``docs/monitoring.md`` explains what is watched and why.
"""
