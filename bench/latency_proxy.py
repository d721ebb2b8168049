"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed one-way time: a distant server, locally.

Each direction forwards what it reads after `delay` seconds, in order, with no bandwidth limit, so a
request/reply round trip costs 2 × delay more than without the proxy. Run it in its own process so
it does not share the measured client's interpreter lock:

    python bench/latency_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS
    (or latency_proxy(target_port, delay_ms) as a context manager → the port to connect to)
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_raw import HOST, free_port, wait_for_port  # noqa: E402


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def read() -> None:
        while data := await reader.read(1 << 16):
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((loop.time() + delay, b""))

    async def write() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    with contextlib.suppress(OSError):
        await asyncio.gather(read(), write())


async def _serve(listen_port: int, target_port: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(HOST, target_port)
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
        for w in (client_w, server_w):
            w.close()

    server = await asyncio.start_server(handle, HOST, listen_port, backlog=200)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def latency_proxy(target_port: int, delay_ms: float) -> Iterator[int]:
    """Run the proxy in a child process in front of 127.0.0.1:target_port; yield its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, str(port), str(target_port), str(delay_ms)])
    try:
        wait_for_port(proc, port, "latency proxy")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


if __name__ == "__main__":
    listen, target, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    asyncio.run(_serve(listen, target, delay_ms / 1000))
