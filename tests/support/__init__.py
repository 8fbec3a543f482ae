"""Helpers shared by test folders (and bench scripts): real servers on free loopback ports.

``pyproject.toml`` puts ``tests/`` on pytest's import path, so test modules in any folder
import these as ``support.<module>``.
"""
