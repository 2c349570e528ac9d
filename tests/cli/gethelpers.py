"""Helpers shared by the `tcpkit get` tests: raw-socket HTTP responders,
the requests they read, URLs, and the version in the User-Agent."""
from tkhelpers import run


TIMEOUT = 20


def version():
    p = run(["version"])
    assert p.returncode == 0
    return p.stdout.decode().split()[1]


def expected_request(target, host):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tcpkit/%s\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
            % (target, host, version())).encode()


def read_request(conn):
    """The request head, read up to its empty line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_client_close(conn):
    """Hold the connection open until the client closes it (bounded by the
    socket timeout): tcpkit must end on the framing, not on our FIN."""
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def responder(response, keep_open=True):
    """A handler: read the request, send response (bytes, or a list of
    pieces sent one by one), then wait for the client to close."""

    def handler(conn, srv):
        srv.received.append(read_request(conn))
        pieces = response if isinstance(response, list) else [response]
        for piece in pieces:
            conn.sendall(piece)
        if keep_open:
            wait_client_close(conn)

    return handler


def url(srv, path="/"):
    return "http://127.0.0.1:%d%s" % (srv.port, path)


def get(args, timeout=TIMEOUT):
    return run(["get"] + list(args), timeout=timeout)


def ok(p):
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""


def https_url(srv, path="/"):
    return "https://localhost:%d%s" % (srv.port, path)
