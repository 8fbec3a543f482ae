"""Boundary tests that capture spans in the test process with ``threadline.testing``.

The capture installs a global TracerProvider, which the main test session must never
have (``tests/sdk/test_journey.py`` checks it), so these modules are named
``inproc_*.py``, are not collected by the main session, and run in a pytest
subprocess of their own started by ``test_in_process.py``.
"""
