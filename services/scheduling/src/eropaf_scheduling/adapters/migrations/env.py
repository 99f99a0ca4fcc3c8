"""Alembic environment shared by the platform and every service (see eropaf_platform.db)."""

from eropaf_platform.migration_env import run

run()
