"""Serve the app on a socket with uvicorn."""

import socket

import uvicorn
from starlette.applications import Starlette

__all__ = ["open_socket", "run_server"]


def open_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` before the server starts.

    Binding first turns a port in use into an :class:`OSError` the caller can report in one
    line, gives the real port when ``port`` is 0, and queues connections (a browser opened at
    once) until the server accepts them.

    :param host: an address or host name, e.g. ``"127.0.0.1"``.
    :param port: a TCP port, 0 for any free one.
    :returns: the listening socket.
    :raises OSError: if the address cannot be bound.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def run_server(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C (or SIGTERM), logging only warnings and errors.

    uvicorn shuts down gracefully on the first Ctrl-C, then raises it again: the caller sees a
    :class:`KeyboardInterrupt` after the server has stopped.

    :param app: from :func:`~pyrtlnet.web.create_app`.
    :param sock: from :func:`open_socket`.
    """
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
