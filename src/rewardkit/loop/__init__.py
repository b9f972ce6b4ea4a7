"""Continuous training: triggers (new comparisons, a monitoring alert, age), the per-run state machine in the
``loop_runs`` table, and the lease that keeps two ticks from running at once. ``rewardkit loop tick|run``
(cli/loop_cmd.py) drive it; docs/registry.md describes it."""
