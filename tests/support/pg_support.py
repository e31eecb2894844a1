"""A throwaway PostgreSQL server for the tests that need a real one (results database, bench reservation).

``pg_url`` (module scope) starts a server for the test module that asks for it: initdb + pg_ctl in a temporary
folder, a free port on 127.0.0.1, trust authentication, fsync off; PostgreSQL refuses to run as root, so under
root it runs as the ``postgres`` user through ``runuser``. It yields a SQLAlchemy URL
(``postgresql+psycopg://bench@127.0.0.1:PORT/postgres``) and stops the server afterwards. The tests are skipped
only when no PostgreSQL server binaries exist (Debian: ``apt-get install -y postgresql``); without the
``postgres`` extra (psycopg) they fail.

Use it by importing the fixture into the test module or conftest: ``from pg_support import pg_url``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))  # Debian keeps them off PATH
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    bindir = _pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl); Debian: apt-get install -y postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:  # a server but no driver is a broken install, not a reason to skip
        pytest.fail("PostgreSQL is installed but its driver is not: pip install '.[postgres]'")
    base = Path(tempfile.mkdtemp(prefix="ots-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(base, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    started = time.monotonic()
    try:
        run = [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust", "-E", "UTF8"]
        subprocess.run([*run, "--no-sync"], check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60",
             "-o", options, "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')}{log}")
    print(f"\n[results] PostgreSQL server started in {time.monotonic() - started:.1f} s")
    try:
        yield f"postgresql+psycopg://bench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
