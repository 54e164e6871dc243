"""A throwaway PostgreSQL cluster on 127.0.0.1 for the test session.

Uses ``TRADEASSIST_TEST_PG_URL`` when set (a server someone else started); otherwise starts
one with the server binaries on this machine (initdb, pg_ctl), as the ``postgres`` user when
running as root (initdb refuses root). Returns None when no binaries are found.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

PASSWORD = "pg-canary-Secret-7781"
USER = "tradeassist"


@dataclass
class Cluster:
    url: str  # server-level URL (database "postgres")
    datadir: Path | None
    runas: list[str]
    pg_ctl: str | None

    def stop(self) -> None:
        if self.datadir is not None and self.pg_ctl:
            subprocess.run(
                [*self.runas, self.pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
            shutil.rmtree(self.datadir.parent, ignore_errors=True)


def find_bindir() -> str | None:
    pg_config = shutil.which("pg_config")
    candidates = []
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if directory and os.path.exists(os.path.join(directory, "initdb")):
            return directory
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def start_cluster() -> Cluster | None:
    external = os.environ.get("TRADEASSIST_TEST_PG_URL")
    if external:
        return Cluster(url=external, datadir=None, runas=[], pg_ctl=None)
    bindir = find_bindir()
    if bindir is None:
        return None
    runas: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="tradeassist-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            return None
        if runuser is None:
            return None
        runas = [runuser, "-u", "postgres", "--"]
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
    base.chmod(0o755)
    datadir = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if runas:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    initdb = [*runas, os.path.join(bindir, "initdb"), "-D", str(datadir), "-U", USER]
    initdb += ["--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"]
    subprocess.run(initdb, capture_output=True, check=True)
    port = free_port()
    pg_ctl = os.path.join(bindir, "pg_ctl")
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    )
    subprocess.run(
        [*runas, pg_ctl, "-D", str(datadir), "-o", options, "-l", str(base / "log"), "-w", "start"],
        capture_output=True,
        check=True,
    )
    url = f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    return Cluster(url=url, datadir=datadir, runas=runas, pg_ctl=pg_ctl)
