"""What several test folders share: the tiny models (tiny_models), a real server (server), the offline BPE
tokenizer and tiny causal LMs (bpe), the monitoring tests' synthetic scores (monitor_synthetic).

Importable as ``rk_testing`` because pyproject.toml puts tests/ on pytest's ``pythonpath``."""
