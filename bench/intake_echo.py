"""A raw HTTP/1.1 responder that answers every request 202 at once: the sender's own ceiling.

    python -m bench.intake_echo PORT

It reads each request's head and ``Content-Length`` bytes of body and writes one fixed answer
shaped like the gateway's (``{"status": "accepted", ...}``), with no framework and no storage,
so what limits the rate against it is the sender (or the loopback), never the server.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"status":"accepted","id":1,"deliveryId":"echo","queued":true}'
ANSWER = (b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def answer_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(content_length(head))
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(answer_connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    asyncio.run(serve(int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
