# bench_servers.py: echo servers with known faults, the peers that prove
# `tcpkit bench` honest: they count what they get, flip bytes, delay answers
# or stall, each by a known amount, and report it on request.
#
# usage: bench_servers.py MODE --size BYTES [options]
#   count   echo everything; count connections, messages and bytes
#   flip    echo, but flip one byte (or --positions) of every --every'th
#           message of each connection
#   delay   echo, but hold every --every'th message of each connection for
#           --delay-ms before echoing it (later ones wait behind it)
#   stall   echo, but once, after --after messages in all, read and write
#           nothing for --stall-ms
#
# Listens on 127.0.0.1 port 0 and prints "PORT <n>".  Each line "stats" on
# stdin prints one JSON line of counts; end of stdin stops the server.
# Messages are framed by --size: the client must send whole messages.

import argparse
import asyncio
import json
import sys
import threading


class Stats:
    def __init__(self):
        self.connections = 0
        self.closed = 0
        self.messages = 0
        self.bytes = 0
        self.flipped = 0
        self.delayed = 0
        self.stalled = 0
        self.per_connection = []

    def doc(self):
        return {"connections": self.connections, "closed": self.closed,
                "messages": self.messages, "bytes": self.bytes,
                "flipped": self.flipped, "delayed": self.delayed,
                "stalled": self.stalled,
                "per_connection": list(self.per_connection)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["count", "flip", "delay", "stall"])
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--positions", default="-1",
                    help="byte positions to flip, comma-separated; "
                         "-1 is the last byte")
    ap.add_argument("--delay-ms", type=float, default=50)
    ap.add_argument("--after", type=int, default=100)
    ap.add_argument("--stall-ms", type=float, default=300)
    args = ap.parse_args()
    size = args.size
    positions = [int(p) for p in args.positions.split(",")]
    stats = Stats()
    stall_done = [False]

    async def handle(reader, writer):
        index = len(stats.per_connection)
        stats.per_connection.append(0)
        stats.connections += 1
        k = 0
        try:
            while True:
                try:
                    msg = await reader.readexactly(size)
                except asyncio.IncompleteReadError as e:
                    # The end of the stream; a partial tail goes back too.
                    stats.bytes += len(e.partial)
                    stats.per_connection[index] += len(e.partial)
                    writer.write(e.partial)
                    break
                stats.bytes += size
                stats.per_connection[index] += size
                stats.messages += 1
                k += 1
                if args.mode == "flip" and k % args.every == 0:
                    b = bytearray(msg)
                    for p in positions:
                        b[p] ^= 0xFF
                    msg = bytes(b)
                    stats.flipped += 1
                elif args.mode == "delay" and k % args.every == 0:
                    await asyncio.sleep(args.delay_ms / 1000)
                    stats.delayed += 1
                elif (args.mode == "stall" and not stall_done[0]
                      and stats.messages >= args.after):
                    stall_done[0] = True
                    await asyncio.sleep(args.stall_ms / 1000)
                    stats.stalled += 1
                writer.write(msg)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            stats.closed += 1
            writer.close()

    async def serve():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                            backlog=1024)
        print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)

        def commands():
            for line in sys.stdin:
                if line.strip() == "stats":
                    # Read on the loop's thread: a consistent snapshot.
                    fut = asyncio.run_coroutine_threadsafe(snapshot(), loop)
                    print(json.dumps(fut.result(10)), flush=True)
            loop.call_soon_threadsafe(stop.set_result, None)

        async def snapshot():
            return stats.doc()

        threading.Thread(target=commands, daemon=True).start()
        async with server:
            await stop

    asyncio.run(serve())


if __name__ == "__main__":
    main()
