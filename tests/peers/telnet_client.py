# telnet_client.py: a small telnet-style line client, a real peer for the
# tests.  It sends each line of stdin terminated by CRLF (as telnet does
# for Enter), writes everything the server sends to stdout with telnet
# commands removed, and refuses every option the server proposes (DO ->
# WONT, WILL -> DONT), so it can talk to a real telnet server and to a
# plain TCP line server alike.  At end of stdin it half-closes and keeps
# reading until the server closes, or until --timeout seconds pass.
#
# usage: telnet_client.py [--timeout SECONDS] HOST PORT

import argparse
import os
import selectors
import socket
import sys
import time

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


class Telnet:
    """Strips telnet commands from the incoming stream, across chunk
    boundaries, and collects the refusals to send back."""

    def __init__(self):
        self.state = "data"
        self.verb = 0
        self.refused = set()

    def feed(self, chunk):
        data = bytearray()
        replies = bytearray()
        for b in chunk:
            if self.state == "data":
                if b == IAC:
                    self.state = "iac"
                else:
                    data.append(b)
            elif self.state == "iac":
                if b == IAC:
                    data.append(IAC)
                    self.state = "data"
                elif b in (DO, DONT, WILL, WONT):
                    self.verb = b
                    self.state = "option"
                elif b == SB:
                    self.state = "sb"
                else:
                    self.state = "data"  # NOP, GA, AYT...: nothing to do
            elif self.state == "option":
                # Answer each proposal once, so two peers that refuse
                # everything cannot loop.
                proposal = (self.verb, b)
                if self.verb in (DO, WILL) and proposal not in self.refused:
                    self.refused.add(proposal)
                    answer = WONT if self.verb == DO else DONT
                    replies += bytes([IAC, answer, b])
                self.state = "data"
            elif self.state == "sb":
                if b == IAC:
                    self.state = "sb-iac"
            elif self.state == "sb-iac":
                self.state = "data" if b == SE else "sb"
        return bytes(data), bytes(replies)


def escape(line):
    """Data bytes equal to IAC are sent doubled."""
    return line.replace(bytes([IAC]), bytes([IAC, IAC]))


def main():
    ap = argparse.ArgumentParser(description="telnet-style line client")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="give up after this many seconds (default 30)")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    args = ap.parse_args()

    deadline = time.monotonic() + args.timeout
    try:
        sock = socket.create_connection((args.host, args.port),
                                        timeout=args.timeout)
    except OSError as e:
        print("telnet_client: connect %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    sock.setblocking(True)
    sys.stderr.write("Connected to %s.\n" % args.host)
    sys.stderr.flush()

    out = sys.stdout.buffer
    tn = Telnet()
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "net")
    stdin = sys.stdin.buffer
    sel.register(stdin, selectors.EVENT_READ, "stdin")
    pending = b""
    shut = False  # our side is half-closed: no more refusals to send

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("telnet_client: timed out", file=sys.stderr)
            return 2
        for key, _ in sel.select(left):
            if key.data == "stdin":
                chunk = os.read(stdin.fileno(), 4096)
                if not chunk:
                    sel.unregister(stdin)
                    if pending:
                        sock.sendall(escape(pending) + b"\r\n")
                        pending = b""
                    sock.shutdown(socket.SHUT_WR)
                    shut = True
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    sock.sendall(escape(line) + b"\r\n")
            else:
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    sys.stderr.write("Connection closed by foreign host.\n")
                    return 0
                data, replies = tn.feed(chunk)
                if replies and not shut:
                    sock.sendall(replies)
                if data:
                    out.write(data)
                    out.flush()


if __name__ == "__main__":
    sys.exit(main())
