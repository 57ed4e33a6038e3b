"""Real server processes for the operations tests: the ASGI server started as the compose
file starts it, a TCP proxy that can cut a dependency off and bring it back, and a clean
stop that leaves no process behind."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, *, headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes, dict]:
    """(status, body, headers) of a GET, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a real service. stop() refuses new connections and cuts
    the open ones (as a database or Redis going away does); start() brings it back on the
    same port."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            listener.close()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close(), upstream.close()
                    return
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def start_process(args: list[str], *, env: dict, log: Path, inherit: bool = True) -> subprocess.Popen:
    """A child in its own process group (so stopping it stops its children too), with this
    process's environment plus `env` (or, not `inherit`ing, `env` alone)."""
    return subprocess.Popen(
        args, cwd=REPO, env={**os.environ, **env} if inherit else env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_server(
    env: dict, log: Path, *, timeout: float = 60, worker: bool = False, inherit: bool = True
) -> tuple[subprocess.Popen, str]:
    """`manage.py serve` (uvicorn) as docker-compose runs it, on a free loopback port, with
    its embedded worker thread or not; returns once /healthz answers."""
    port = free_port()
    process = start_process(
        [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--embedded-worker", "yes" if worker else "no"],
        env=env,
        log=log,
        inherit=inherit,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if get(base + "/healthz", timeout=2)[0] == 200:
                return process, base
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the server did not answer /healthz within {timeout}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen, *, timeout: float = 20) -> int:
    """SIGTERM (what `docker compose stop` sends), then wait; SIGKILL only if it hangs,
    and then fail: a process that ignores SIGTERM would be killed by Docker after 10 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"process {process.args[:4]} did not stop within {timeout}s of SIGTERM") from None
    return process.returncode


def stop_all(processes: dict[str, subprocess.Popen], *, logs: Path) -> dict[str, int | str]:
    """Stop every process (exit status, or why it would not stop) and print the end of
    each one's log (`logs / "<name>.log"`), for the test's output when it fails."""
    results: dict[str, int | str] = {}
    for name, process in processes.items():
        try:
            results[name] = stop(process)
        except AssertionError as error:
            results[name] = str(error)
    for name in processes:
        print(f"--- {name} ---\n{(logs / f'{name}.log').read_text()[-3000:]}")
    return results


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
