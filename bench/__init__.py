"""The benchmark: ``python bench/run.py [--quick]``."""
