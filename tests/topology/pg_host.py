"""A private PostgreSQL cluster on a namespace host: Debian's initdb and postgres, run as ``postgres``.

initdb refuses to run as root, so both it and the server run as the ``postgres`` user (through
``setpriv``). The server listens on the host's namespace address only, trusts the topology's
subnet (and nothing else), keeps its socket in its own data directory, and skips fsync: the
data directory is a throwaway removed by ``stop``.
"""

from __future__ import annotations

import glob
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

from tests.topology.netns import Topology, call_in_netns

AS_POSTGRES = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise FileNotFoundError("no /usr/lib/postgresql/*/bin/postgres: install Debian's postgresql")
    return Path(found[-1]).parent


class PostgresHost:
    """``start()`` a cluster in ``role``'s namespace; ``url`` reaches it from the other hosts."""

    def __init__(self, topo: Topology, role: str, port: int = 5432) -> None:
        self.topo, self.role, self.port = topo, role, port
        self.address = topo.addresses[role]
        self.url = f"postgresql://postgres@{self.address}:{port}/postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="rakuda-pg-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, log_path: str, from_role: str) -> PostgresHost:
        """initdb, then the server in the foreground; returns once ``from_role`` can connect."""
        user = pwd.getpwnam("postgres")
        shutil.chown(self.dir, user.pw_uid, user.pw_gid)
        bin_dir = postgres_bin()
        subprocess.run([*AS_POSTGRES, str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"],
                       capture_output=True, text=True, check=True, cwd=self.dir)
        with open(self.data / "pg_hba.conf", "w") as hba:  # the subnet only, no one else
            hba.write(f"local all all trust\nhost all all {self.topo.subnet}.0/24 trust\n")
        self.proc = self.topo.spawn(self.role, [
            *AS_POSTGRES, str(bin_dir / "postgres"), "-D", str(self.data), "-c", f"listen_addresses={self.address}",
            "-c", f"port={self.port}", "-c", f"unix_socket_directories={self.data}", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=100",
        ], log_path, cwd=self.dir)
        deadline = time.time() + 60
        while not call_in_netns(self.topo.hosts[from_role], self.accepts_connections):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"PostgreSQL on {self.address} did not start; see {log_path}")
            time.sleep(0.1)
        return self

    def accepts_connections(self) -> bool:
        try:
            psycopg2.connect(self.url, connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """A fast shutdown (SIGINT: no shared memory left behind), SIGKILL if it hangs; the data removed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
