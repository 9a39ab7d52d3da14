"""A throwaway PostgreSQL cluster in a temporary folder, run by an unprivileged user.

Uses Debian's ``postgresql`` server binaries (``/usr/lib/postgresql/<major>/bin``). PostgreSQL
refuses to run as root, so under root the cluster belongs to ``nobody``; otherwise to the
current user. Trust authentication on 127.0.0.1 only, a free port, stopped with ``pg_ctl``
(fast mode, bounded wait) and SIGKILL of the postmaster if that hangs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.live.airflow_server import free_port


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class PostgresCluster:
    folder: Path
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/airflow"

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("Debian postgresql is not installed (make apt)")
        folder = Path(tempfile.mkdtemp(prefix="slipway-pg-"))
        run_as = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            entry = pwd.getpwnam(run_as)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        cluster = cls(folder=folder, port=free_port(), user=run_as)
        data = folder / "data"
        cluster._run(bin_dir / "initdb", "-D", data, "-U", run_as, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {folder} -c fsync=off"
        cluster._run(
            bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "server.log", "-w", "start"
        )
        cluster._run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", cluster.port, "-U", run_as, "airflow")
        return cluster

    def _run(self, *argv: object) -> None:
        command = [str(a) for a in argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.folder)

    def stop(self) -> None:
        bin_dir = postgres_bin()
        data = self.folder / "data"
        try:
            self._run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-t", "20", "-w", "stop")
        except (subprocess.SubprocessError, OSError):
            pid_file = data / "postmaster.pid"
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)
