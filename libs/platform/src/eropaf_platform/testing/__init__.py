"""Test support shared by every package: pytest fixtures and polling helpers.

The fixtures live in `eropaf_platform.testing.fixtures`, registered as a pytest
plugin in the root `conftest.py`.
"""

from .wait import WaitTimeout, wait_until, wait_until_async

__all__ = ["WaitTimeout", "wait_until", "wait_until_async"]
