"""Faults injected with real sockets: a TCP proxy on loopback in front of PostgreSQL or Redis
that can drop every connection and refuse new ones, standing in for a server restart without
touching the shared server other tests use."""

from __future__ import annotations

import asyncio
import re


def port_of(url: str) -> int:
    """The port of `scheme://[user@]host:port/...`."""
    match = re.search(r"@?[\w.\-\[\]]+:(\d+)", url.split("//", 1)[1])
    assert match is not None, f"no port in {url}"
    return int(match.group(1))


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`. `stop()` closes every open
    connection and the listening socket (clients see resets, then refused connections);
    `start()` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def serving(self) -> bool:
        return self.server is not None and self.server.is_serving()

    def url_for(self, url: str) -> str:
        """`url` with its port replaced by the proxy's."""
        return url.replace(f":{port_of(url)}", f":{self.port}", 1)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self._writers += [writer, upstream_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
