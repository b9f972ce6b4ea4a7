"""The states of a loop run (a row of ``loop_runs``), apart so that the machine and the triggers both read them."""

STATES = ("requested", "pending", "compiled", "trained", "registered", "promoted", "rejected", "skipped", "failed")
FINAL = ("promoted", "rejected", "skipped", "failed")
"""A run in one of these is over: the next tick starts a new one."""
