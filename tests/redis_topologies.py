"""Redis as it is deployed, for tests: a Sentinel group and a six-node Cluster on loopback.

Every process is a real ``redis-server`` (a sentinel is ``redis-server <conf> --sentinel``,
so only the redis-server package is needed; the cluster is created with ``redis-cli
--cluster create`` from redis-tools). Every wait is bounded and says what it waited for.
``stop()`` ends every process the topology started.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from redis_server import RedisServer, free_port

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000  # sentinel: a primary silent this long is subjectively down
FAILOVER_TIMEOUT_MS = 3000
CLUSTER_NODE_TIMEOUT_MS = 1000  # cluster: a primary silent this long fails over


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1)


def _info(port: int, section: str) -> dict[str, object]:
    with _client(port) as client:
        return dict(client.info(section))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelGroup:
    """One primary, one replica and three sentinels (quorum 2) on free loopback ports."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.primary = self._node("primary")
        self.replica = self._node("replica", "--replicaof", "127.0.0.1", str(self.primary.port))
        self.sentinels = [self._sentinel(i) for i in range(3)]

    def _node(self, name: str, *extra: str) -> RedisServer:
        (self.workdir / name).mkdir()
        return RedisServer(self.workdir / name, extra_args=extra)

    def _sentinel(self, index: int) -> RedisServer:
        workdir = self.workdir / f"sentinel{index}"
        workdir.mkdir()
        config = workdir / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return RedisServer(workdir, config=config, extra_args=["--sentinel"])

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of this group (database 0)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_healthy(self.primary.port)

    def wait_healthy(self, primary_port: int, timeout: float = 30.0) -> None:
        """Replication is up and every sentinel sees the primary, a replica and 2 peers."""
        wait_for(
            f"the replica of 127.0.0.1:{primary_port} to sync",
            lambda: _info(primary_port, "replication").get("connected_slaves") == 1,
            timeout,
        )
        for sentinel in self.sentinels:
            wait_for(
                f"sentinel :{sentinel.port} to see primary :{primary_port}, "
                "one replica and two other sentinels",
                lambda s=sentinel: self._sentinel_ready(s.port, primary_port),
                timeout,
            )

    def _sentinel_ready(self, port: int, primary_port: int) -> bool:
        with _client(port) as client:
            master = client.execute_command("SENTINEL", "MASTER", SERVICE)
        master = {_text(k): _text(v) for k, v in dict(master).items()}
        return (
            master.get("port") == str(primary_port)
            and master.get("num-slaves") == "1"
            and master.get("num-other-sentinels") == "2"
            and "down" not in master.get("flags", "")
        )

    def current_primary_port(self) -> int:
        """The primary's port as the first sentinel that answers says."""
        for sentinel in self.sentinels:
            try:
                with _client(sentinel.port) as client:
                    _, port = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                    )
                return int(port)
            except (redis.RedisError, OSError):
                continue
        raise RuntimeError("no sentinel answers")

    def stop(self) -> None:
        for server in [*self.sentinels, self.primary, self.replica]:
            server.stop()


class Cluster:
    """Six ``--cluster-enabled`` nodes: three primaries with one replica each."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes: list[RedisServer] = []
        for index in range(6):
            (workdir / f"node{index}").mkdir()
            port = free_port()
            self.nodes.append(
                RedisServer(
                    workdir / f"node{index}",
                    port,
                    extra_args=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", f"nodes-{port}.conf",
                        "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS),
                        # A replica may take over however long ago it last heard its primary.
                        "--cluster-replica-validity-factor", "0",
                        # The bus port defaults to port + 10000, which may be taken
                        # (or over 65535): name a free one.
                        "--cluster-port", str(free_port()),
                    ],
                )
            )  # fmt: skip

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL of this cluster (two seed nodes)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError(
                "redis-cli is not installed: the cluster tests need it "
                "(apt-get install redis-tools)"
            )
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        result = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed: {result.stdout[-2000:]!r} "
                f"{result.stderr[-2000:]!r}"
            )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every node says ``cluster_state:ok``, knows all six, and every replica is in sync."""
        for node in self.nodes:
            wait_for(
                f"cluster node :{node.port} to report cluster_state:ok with 6 known nodes "
                "and, if a replica, its link to its primary up",
                lambda n=node: self._node_ok(n.port) and self._replica_synced(n.port),
                timeout,
            )

    @staticmethod
    def _replica_synced(port: int) -> bool:
        info = _info(port, "replication")
        return info.get("role") == "master" or info.get("master_link_status") == "up"

    @staticmethod
    def _node_ok(port: int) -> bool:
        with _client(port) as client:
            text = client.execute_command("CLUSTER", "INFO")
        text = _text(text)
        info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        return info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == "6"

    def primary_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        alive = next(n.port for n in self.nodes if n.process is not None)
        with _client(alive) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no node serves the slot of {key!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
