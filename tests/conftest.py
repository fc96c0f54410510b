"""Shared pytest set-up: fixtures for real services live in tests/fixtures/."""

import os

# Keep any stray MLflow use inside the test's own temp dirs, and Ray quiet and token-free.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.data", "tests.fixtures.cluster", "tests.fixtures.postgres", "tests.fixtures.training", "tests.fixtures.dvc_project"]
