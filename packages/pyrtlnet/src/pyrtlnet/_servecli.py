"""The ``serve`` sub-command: the draw-a-digit page (needs the ``web`` extra).

This module imports nothing of the web stack, so the rest of the CLI works without it; the
handler imports :mod:`pyrtlnet.web` when it runs and says how to install it when it is missing.
"""

import argparse
import ipaddress
import sys
import webbrowser
from pathlib import Path
from typing import TextIO

from qnn_ref.clitools import CommandError, Handler

__all__ = ["add_serve_command"]

_DEFAULT_PORT = 8000


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port must be an integer 0-65535, not {text!r}")
    return port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from . import web
    except ImportError as error:
        raise CommandError(
            f"pyrtlnet serve needs the web extra ({error.name} is missing): "
            "pip install 'pyrtlnet[web]', or run it as `hatch run web:pyrtlnet serve`"
        ) from None
    if not _is_loopback(args.host):
        print(
            f"pyrtlnet serve: warning: --host {args.host} makes the page and its API reachable "
            "from other machines; the server has no authentication",
            file=sys.stderr,
        )
    try:
        sock = web.open_socket(args.host, args.port)
    except OSError as error:
        raise CommandError(
            f"cannot listen on {args.host} port {args.port} ({error.strerror or error}); "
            "choose another with --port"
        ) from None
    with sock:
        print("building the hardware of each model ...", file=out, flush=True)
        models = web.load_models(args.model)
        app = web.create_app(models)
        host, port = sock.getsockname()[:2]
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        for model in models.values():
            rows, cols = model.array
            print(f"  {model.name}: {model.model.path} on a {rows}x{cols} array", file=out)
        try:
            print(f"serving {url}  (Ctrl-C stops)", file=out, flush=True)
            if args.open:
                webbrowser.open(url)
            web.run_server(app, sock)
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly
            pass
    print("stopped", file=out)
    return 0


def add_serve_command(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> dict[str, Handler]:
    """Add the ``serve`` sub-command.

    :param commands: the CLI's ``add_subparsers()`` result.
    :returns: the handler by command name, for the CLI's dispatch table.
    """
    serve = commands.add_parser(
        "serve",
        help="serve the draw-a-digit page: your digit through LiteRT, NumPy and the hardware",
        description="Build the gate-level hardware of each model once, then serve a local page "
        "where you draw a digit (or pick an MNIST test image) and see LiteRT, NumPy and the "
        "simulated hardware predict it, layer by layer and cycle by cycle, plus its JSON API. "
        "Needs the web extra (pip install 'pyrtlnet[web]').",
    )
    serve.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="also serve this .tflite model, named by its file name (repeatable; the shipped "
        "model is always served as mlp)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default %(default)s; anything else warns: the page "
        "becomes reachable from other machines)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=_DEFAULT_PORT,
        help="TCP port (default %(default)s; 0 picks a free one)",
    )
    serve.add_argument(
        "--open", action="store_true", help="open the page in the default web browser"
    )
    return {"serve": _serve}
