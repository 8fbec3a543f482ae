"""The read commands over HTTPS: a private certificate trusted through THREADLINE_CA_CERT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from server.auth.test_tls import self_signed_certificate
from support.processes import threadline_serve


def _services(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", "services", "--json", "--server", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_read_command_trusts_the_ca_it_is_given_and_refuses_otherwise(tmp_path: Path) -> None:
    """With THREADLINE_CA_CERT the server's certificate verifies; without it, a clear error."""
    cert, key = self_signed_certificate(tmp_path)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    with threadline_serve(tmp_path, *tls, env=env, tls_ca=cert) as served:
        trusted = _services(served.url, {**env, "THREADLINE_CA_CERT": str(cert)})
        untrusted = _services(served.url, env)
    assert trusted.returncode == 0, trusted.stderr
    assert '"services"' in trusted.stdout
    assert untrusted.returncode == 1
    assert "cannot reach Threadline" in untrusted.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr
