"""Shared fixtures. Real servers (Redis, PostgreSQL) are started by the fixtures in
tests/support and stopped when the session ends."""

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.postgres_server",
]
