"""End-to-end tests: real processes, real brokers, read back through the API."""
