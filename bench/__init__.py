"""The benchmark suite (pytest-benchmark) and its report: ``pytest bench``, then ``python -m bench.report``."""
