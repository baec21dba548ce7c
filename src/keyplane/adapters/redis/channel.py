"""One dedicated Redis connection for the request path: a round trip of one command, or of many
written together (a pipeline), one round trip at a time.

Why not `Redis.evalsha` and `Redis.pipeline`: for a call as small as a rate-limit decision,
redis-py's client layer (pool checkout and checkin, retry wrapper, per-operation timeouts,
observability hooks, response callbacks) costs more client CPU than the round trip itself
(measured in benchmarks/ratelimit.py). This talks to redis-py's own `Connection` (it still
does the connecting, the handshake, the health checks and the RESP parsing) and skips the
rest. Commands arrive packed (`pack_command`, hiredis's own: redis-py encodes every argument
in Python first), so a caller that sends the same command again can pack it once. The caller
bounds every call with a deadline of its own (`asyncio.timeout`); a call that fails
or is cancelled half-way drops the connection, so no reply is ever read by the wrong caller,
and the next call reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError


class Channel:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._connection: AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def call(self, command: bytes) -> Any:
        """One packed command, one round trip; an error reply is raised."""
        async with self._lock:
            connection = await self._checkout()
            try:
                await connection.send_packed_command(command)
                return await connection.read_response()
            except ResponseError:
                raise  # an error reply; the connection is in step
            except BaseException:
                await self._drop()
                raise

    async def pipeline(self, commands: Sequence[bytes]) -> list[Any]:
        """Many packed commands written at once, one round trip; error replies are returned
        in their place (one failing command does not fail the others)."""
        async with self._lock:
            connection = await self._checkout()
            try:
                await connection.send_packed_command(b"".join(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as error:
                        replies.append(error)
                return replies
            except BaseException:
                await self._drop()
                raise

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _checkout(self) -> AbstractConnection:
        if self._connection is None:
            pool = self.client.connection_pool
            self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect(nowait=True)
            await self.client.connection_pool.release(connection)
