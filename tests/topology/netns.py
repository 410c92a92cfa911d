"""Hosts simulated with Linux network namespaces: a bridge, one veth per host, nftables to cut links.

Every name carries a random tag, and the bridge lives in a namespace of its own, so parallel
runs never share a name, and no address is ever routed outside the topology. The hosts take
``<subnet>.10`` upwards; the subnet is ``RAKUDA_TOPOLOGY_SUBNET`` (three octets, default
``10.214.0``), so a run can be moved off a range that something else on the machine uses.
Everything is removed by ``Topology.destroy``.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
DEFAULT_SUBNET = "10.214.0"


def subnet_from_env() -> str:
    """The first three octets the hosts' addresses share (``RAKUDA_TOPOLOGY_SUBNET``)."""
    subnet = os.environ.get("RAKUDA_TOPOLOGY_SUBNET", DEFAULT_SUBNET)
    try:
        ipaddress.IPv4Network(f"{subnet}.0/24")
    except ValueError:
        raise ValueError(f"RAKUDA_TOPOLOGY_SUBNET={subnet!r} is not three octets such as 10.214.0") from None
    return subnet


_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling THREAD into network namespace ``name`` (sockets it makes live there)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def call_in_netns(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` in a new thread inside namespace ``name``; its result or its exception."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            enter_netns(name)
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future.result(timeout=120)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if shutil.which("nft") is None:
        return "nftables (nft) is not installed"
    probe = f"rkprobe{uuid.uuid4().hex[:6]}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"'ip netns add' is not permitted here: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


class Topology:
    def __init__(self, subnet: str | None = None) -> None:
        self.subnet = subnet or subnet_from_env()
        self.tag = uuid.uuid4().hex[:6]
        self.switch = f"rk{self.tag}-sw"
        self.hosts: dict[str, str] = {}  # role -> namespace
        self.addresses: dict[str, str] = {}  # role -> IPv4
        self.links: dict[str, str] = {}  # role -> its veth's name on the switch side
        self.procs: list[subprocess.Popen] = []

    def create(self, roles: list[str]) -> Topology:
        run("ip", "netns", "add", self.switch)
        run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.switch, "link", "set", "br0", "up")
        for number, role in enumerate(roles, start=10):
            ns = f"rk{self.tag}-{role}"
            run("ip", "netns", "add", ns)
            self.hosts[role] = ns  # known from now on, so destroy() removes it whatever fails next
            host_end, switch_end = f"rk{self.tag}h{number}", f"rk{self.tag}s{number}"
            run("ip", "link", "add", host_end, "netns", ns, "type", "veth", "peer", "name", switch_end,
                "netns", self.switch)
            run("ip", "-n", self.switch, "link", "set", switch_end, "master", "br0", "up")
            address = f"{self.subnet}.{number}"
            run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", host_end)
            run("ip", "-n", ns, "link", "set", host_end, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            self.addresses[role], self.links[role] = address, switch_end
        return self

    def spawn(self, role: str, argv: list[str], log_path: str, **popen: Any) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", self.hosts[role], *argv], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, **popen)
        self.procs.append(proc)
        return proc

    # --- faults ---
    def drop_all(self, role: str) -> None:
        """Every packet in or out of ``role`` dropped: a host that went silent (no FIN, no RST)."""
        self._nft(role, "inet rkdrop", "ip saddr 0.0.0.0/0 drop", "ip daddr 0.0.0.0/0 drop")

    def drop_between(self, role: str, peer: str) -> None:
        """Packets between ``role`` and ``peer`` dropped (in ``role``'s namespace), the rest flows."""
        address = self.addresses[peer]
        self._nft(role, "inet rkdrop", f"ip saddr {address} drop", f"ip daddr {address} drop")

    def drop_port_between(self, role: str, peer: str, port: int) -> None:
        """Packets between ``role`` and one service (``port``) of ``peer`` dropped; its other services flow."""
        address = self.addresses[peer]
        self._nft(role, "inet rkdrop", f"ip saddr {address} tcp sport {port} drop",
                  f"ip daddr {address} tcp dport {port} drop")

    def heal(self, role: str) -> None:
        run("ip", "netns", "exec", self.hosts[role], "nft", "delete", "table", "inet", "rkdrop", check=False)

    def set_link(self, role: str, up: bool) -> None:
        run("ip", "-n", self.switch, "link", "set", self.links[role], "up" if up else "down")

    def _nft(self, role: str, table: str, input_rule: str, output_rule: str) -> None:
        ns = self.hosts[role]
        hook = "type filter hook {} priority 0; policy accept;"
        script = (f"table {table} {{\n"
                  f"  chain in {{ {hook.format('input')} iifname != \"lo\" {input_rule}; }}\n"
                  f"  chain out {{ {hook.format('output')} oifname != \"lo\" {output_rule}; }}\n"
                  f"}}\n")
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True, check=True,
                       capture_output=True)

    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        for ns in [*self.hosts.values(), self.switch]:
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", ns, check=False)
