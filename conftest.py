# Shared fixtures (real broker, real PostgreSQL, polling helpers) for every package's tests.
pytest_plugins = ["eropaf_platform.testing.fixtures"]
