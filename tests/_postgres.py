"""A throwaway PostgreSQL cluster for the test session, from the machine's own server binaries.

`server_bindir()` finds `initdb` and `pg_ctl`; `throwaway_cluster(bindir)` runs `initdb` (trust
auth) in a fresh temporary directory, starts the server on a free port of 127.0.0.1 with its unix
socket in that directory, creates the database `test`, yields its URL, then stops the server and
removes the directory. `initdb` and `pg_ctl` refuse to run as root, so under root both run as
`postgres` (or `nobody`), who is given the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DEBIAN_BINDIRS", "server_bindir", "throwaway_cluster"]

DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
"""Where Debian and Ubuntu install the server binaries, off the PATH."""

_TOOLS = ("initdb", "pg_ctl", "postgres")
_LONGEST_TEMPDIR = 64  # a unix socket's path, here DIR/threadloom-pg-XXXXXXXX/.s.PGSQL.PORT, has 107 bytes at most
_START_ATTEMPTS = 3  # another process may take the free port between choosing it and binding it


def server_bindir(path: str | None = None, pattern: str = DEBIAN_BINDIRS) -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`: the PATH's first, else the newest
    major version under `pattern`; None when the machine has no PostgreSQL server."""
    found = shutil.which("initdb", path=path)
    if found is not None:
        bindir = Path(found).resolve().parent  # /usr/local/bin/initdb is often a link into the real one
        if _has_tools(bindir):
            return bindir
    candidates = [Path(p) for p in glob.glob(pattern) if _has_tools(Path(p))]
    candidates.sort(key=lambda p: [int(part) if part.isdigit() else -1 for part in p.parent.name.split(".")])
    return candidates[-1] if candidates else None


@contextmanager
def throwaway_cluster(bindir: Path) -> Generator[str]:
    """A running cluster of its own with an empty database `test`; yields its URL."""
    owner = _unprivileged_user() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="threadloom-pg-", dir=_reachable_tempdir(owner)))
    data = root / "data"
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        initdb = ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        _run(owner, root, bindir / "initdb", *initdb)
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\nfsync = off\n")
        port = _start(owner, root, bindir, data)
        try:
            url = f"postgresql://postgres@127.0.0.1:{port}/test"
            import psycopg

            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE test")
            yield url
        finally:
            _run(owner, root, bindir / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start(owner: pwd.struct_passwd | None, root: Path, bindir: Path, data: Path) -> int:
    """Start the server on a free port and return the port."""
    attempts_left = _START_ATTEMPTS
    while True:
        port = _free_port()
        try:
            start = ["start", "-D", data, "-l", root / "server.log", "-w", "-t", "60", "-o", f"-p {port}"]
            _run(owner, root, bindir / "pg_ctl", *start)
            return port
        except RuntimeError:
            attempts_left -= 1
            if not attempts_left:
                raise


def _run(owner: pwd.struct_passwd | None, cwd: Path, *argv: str | Path) -> None:
    """Run one server tool, as `owner` when given; a failure raises with the tool's output (and the log)."""
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        user=None if owner is None else owner.pw_uid,
        group=None if owner is None else owner.pw_gid,
        extra_groups=None if owner is None else [],
    )
    if done.returncode != 0:
        log = cwd / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}")


def _unprivileged_user() -> pwd.struct_passwd:
    """The account the server runs as when the tests run as root."""
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a postgres nor a nobody account exists to run initdb as")


def _reachable_tempdir(owner: pwd.struct_passwd | None) -> str | None:
    """The usual temporary directory, unless `owner` could not walk into it or a unix socket's path
    under it would be too long (then /tmp)."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) > _LONGEST_TEMPDIR or (
        owner is not None and not all(map(_others_may_enter, (base, *base.parents)))
    ):
        return "/tmp"
    return None


def _others_may_enter(directory: Path) -> bool:
    return bool(directory.stat().st_mode & stat.S_IXOTH)


def _has_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
