"""Workspace-wide pytest configuration: shared fixtures for real brokers, databases and servers."""

pytest_plugins = ["sma3_testing.fixtures"]
