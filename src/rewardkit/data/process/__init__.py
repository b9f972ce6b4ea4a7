"""Step-labelled (process) data made from GSM8K: a safe arithmetic evaluator, the step checker, the corruption
generator, the reader of the shared model solutions and the TRL stepwise writer. See docs/process-rewards.md."""
