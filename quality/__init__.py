"""Data quality: declared check suites run in stages, a quality score and a publish gate.

The engine (``quality.engine``) is pure Python + polars; ``quality.suites`` declares the suites per dataset.
"""
