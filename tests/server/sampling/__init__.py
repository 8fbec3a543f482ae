"""Sampling on the server: the rule API, rule storage, tail sampling."""
