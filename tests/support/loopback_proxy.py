"""A TCP proxy on loopback in front of a real server, for what a test or a benchmark needs to
do to the connection between the script and Llama Stack: cut it, stall it, or see when the
first request arrived."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class LoopbackProxy:
    """A TCP proxy on loopback in front of the real server. ``cut()`` closes every connection
    and the listening socket, as when the server goes away mid-run: connections are refused.
    ``stall()`` keeps every connection open but forwards nothing more either way, as a server
    too busy to answer: whatever the script asks from then on waits for its own timeout."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        self._flowing = threading.Event()
        self._flowing.set()
        self.first_request_at: float | None = None  # time.monotonic() of the first bytes a client sent
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self.first_request_at is None:
                    self.first_request_at = time.monotonic()
                self._flowing.wait()
                if self._cut:
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        self._flowing.clear()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._flowing.set()  # stalled pipes wake up to find their sockets closed
            self._listener.close()
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
