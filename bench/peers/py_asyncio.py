# py_asyncio.py: the idiomatic asyncio echo server (streams API).
import asyncio
import sys


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = await asyncio.start_server(echo, "127.0.0.1", port, backlog=4096)
    print("listening on 127.0.0.1:%d" % srv.sockets[0].getsockname()[1],
          flush=True)
    await srv.serve_forever()


asyncio.run(main())
