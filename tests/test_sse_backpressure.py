"""A subscriber that stops reading is cut off (and can resume); the others keep receiving."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import API_KEY
from tests.test_sse_helpers import AUTH, eventually, seqs, served_hub, stream

_ID = re.compile(rb"id: (\d+)\n")
# ~64 KB per event: the kernel takes a few MB for a peer that does not read before the
# server's own buffer fills, so big events get there in a hundred posts or so.
_OUTPUTS = [{"url": f"https://cdn.example/{i}/" + "x" * 4000} for i in range(16)]


async def _stalled_subscriber(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that reads the response head and then nothing more."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up sooner
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(
        f"GET /v1/events HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {API_KEY}\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


async def test_a_stalled_subscriber_is_cut_while_a_healthy_one_keeps_receiving(
    tmp_path: Path,
) -> None:
    async with served_hub(tmp_path, sse_buffer_bytes=512 * 1024) as s:
        task = await s.task()
        stalled_reader, stalled_writer = await _stalled_subscriber(s.url)
        async with stream(s.url + "/v1/events", AUTH) as healthy:
            received: list[int] = []

            async def read_healthy() -> None:
                while (message := await healthy.next(timeout=30)) is not None:
                    received.append(message.data["seq"])

            reading = asyncio.create_task(read_healthy())
            await eventually(lambda: len(s.hub.fanout) == 2)
            progress = 0
            async with asyncio.timeout(60):
                while s.hub.fanout.stats.cut_slow == 0:
                    assert progress < 500, "the stalled subscriber was never cut"
                    progress += 1
                    await s.hook(
                        task, status="running", progress=progress % 100, outputs=_OUTPUTS,
                        delivery_id=f"d{progress}",
                    )  # fmt: skip
            # The healthy stream got everything, in order, while the other was cut off.
            last = await s.hub.store.last_seq()
            await eventually(lambda: bool(received) and received[-1] == last, 20)
            assert received == list(range(2, last + 1))
            assert len(s.hub.fanout) == 1  # the cut stream holds nothing in the hub any more
            metrics = s.hub.metrics.render().decode()
            assert "hub_sse_streams_cut_total 1.0" in metrics
            reading.cancel()
        # The stalled client, once it reads again, gets an unbroken prefix and then the end...
        data = await asyncio.wait_for(stalled_reader.read(), 20)
        stalled_writer.close()
        got = [int(m) for m in _ID.findall(data)]
        assert got == list(range(2, len(got) + 2))
        assert not data.endswith(b"0\r\n\r\n")  # cut, not a clean end of the stream
        # ... and resumes from its last id with nothing missed and nothing twice.
        resume = {**AUTH, "Last-Event-ID": str(got[-1])}
        async with stream(s.url + "/v1/events", resume) as again:
            rest = await again.take(last - got[-1])
        assert seqs(rest) == list(range(got[-1] + 1, last + 1))
