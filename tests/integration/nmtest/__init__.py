"""Helpers for the integration tests: broker, server and test host client."""
