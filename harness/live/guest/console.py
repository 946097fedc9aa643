"""The Linux guest's console channel: COM2 of every QEMU of a scenario connects to a socket the harness
owns. What arrives is the guest kernel's console (kept with arrival times, written to ``console.log``);
what the harness writes are commands to the guest's init (``CHECK <token>``), sent on the connection of
the newest QEMU (the one that runs the guest after the switch).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path


class ConsoleChannel:
    def __init__(self, socket: Path, log: Path) -> None:
        self.socket, self.log = socket, log
        self.chunks: list[tuple[float, bytes]] = []  # (arrival, epoch s; bytes)
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None
        self._file = log.open("ab")

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while data := await reader.read(65536):
                self.chunks.append((time.time(), data))
                self._file.write(data)
                self._file.flush()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def send(self, line: str) -> bool:
        """Write ``line`` to the newest QEMU's COM2; False when no QEMU is connected."""
        for writer in reversed(self._writers):
            if not writer.is_closing():
                writer.write(line.encode() + b"\n")
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                    return True
        return False

    def text(self, since: float | None = None) -> str:
        """The console text (from ``since``, an epoch time, on: what arrived after it)."""
        data = b"".join(d for t, d in self.chunks if since is None or t >= since)
        return data.decode("utf-8", "replace").replace("\r\n", "\n")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        self._file.close()
        with contextlib.suppress(OSError):
            self.socket.unlink()
