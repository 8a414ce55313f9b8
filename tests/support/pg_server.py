"""A real, throwaway PostgreSQL server on loopback for the Postgres sink's tests.

`initdb` and `pg_ctl` from Debian's `postgresql` package, in a temp dir, password auth over TCP.
PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user the
package creates. On a fresh machine (no binaries) and as root, the package is installed with
apt-get, so the README's test command brings the server up by itself; otherwise the tests fail
with what to install.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER, PASSWORD, DATABASE = "loader", "s3cret-pw-never-shown", "results"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install() -> Path:
    """The server binaries, installed first if need be: one suite at a time (two suites side
    by side would both run apt-get, and the second would fail on dpkg's lock)."""
    with open(os.path.join(tempfile.gettempdir(), "resultloader-pg-install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install_once()


def _install_once() -> Path:
    bin_dir = _bin_dir()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "the Postgres sink's tests need PostgreSQL's server binaries (initdb, pg_ctl): "
            "install Debian's `postgresql` package (apt-get install postgresql), or run as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
        capture_output=True,
    )
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("apt-get installed postgresql, but no initdb was found")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield its URL without the password (tests pass it by PGPASSWORD)."""
    bin_dir = _install()
    root = Path(tempfile.mkdtemp(prefix="resultloader-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, socket_dir = root / "data", root
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if user:
        os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)

    def run(*args: str) -> None:
        subprocess.run(args, check=True, user=user, capture_output=True, cwd=root)

    run(
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        USER,
        f"--pwfile={pwfile}",
        "--auth-host=scram-sha-256",
        "--auth-local=trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    port = _free_port()  # after initdb's seconds, not before: less time for another to take it
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    try:
        run(str(bin_dir / "createdb"), "-h", str(socket_dir), "-p", str(port), "-U", USER, DATABASE)
        yield f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
