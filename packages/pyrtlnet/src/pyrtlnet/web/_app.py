"""The ASGI app: the page's static files and a small JSON API over the served models.

Every answer of the API is JSON, errors included: ``{"error": "what is wrong"}`` with a 4xx
status, after which the server goes on serving. The gate-level runs happen in Starlette's thread
pool, so a slow simulation never holds up the event loop (static files, other requests).
"""

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ._centering import IMAGE_SIZE
from ._service import BACKENDS, ServedModel, sample_images

__all__ = ["MAX_REQUEST_BYTES", "create_app"]

#: Largest request body accepted: a 28x28 image as JSON is about 3 KB, 12 KB with generous
#: whitespace.
MAX_REQUEST_BYTES = 64 * 1024
_STATIC = Path(__file__).resolve().parent / "static"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, read no further than :data:`MAX_REQUEST_BYTES`."""
    too_large = _BadRequest(
        413, f"request body larger than {MAX_REQUEST_BYTES} bytes; send one 28x28 image"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise too_large

    def constant(name: str) -> None:
        raise _BadRequest(422, f"JSON must not hold {name}; pixels are integers 0-255")

    try:
        data = json.loads(body, parse_constant=constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _BadRequest(400, f"request body is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _BadRequest(422, f"request body must be a JSON object, not {type(data).__name__}")
    return data


def _pixels(data: dict[str, Any]) -> np.ndarray:
    """``data["pixels"]`` as ``uint8 [28, 28]``, or a message naming the first bad value."""
    if "pixels" not in data:
        raise _BadRequest(422, "missing field 'pixels': 28 rows of 28 grey values 0-255")
    rows = data["pixels"]
    shape = f"{IMAGE_SIZE} rows of {IMAGE_SIZE} grey values 0-255"
    if not isinstance(rows, list) or len(rows) != IMAGE_SIZE:
        got = f"{len(rows)} rows" if isinstance(rows, list) else type(rows).__name__
        raise _BadRequest(422, f"pixels must be {shape}, not {got}")
    for r, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != IMAGE_SIZE:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise _BadRequest(422, f"pixels[{r}] must be {IMAGE_SIZE} grey values 0-255, not {got}")
        for c, value in enumerate(row):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value != int(value):
                raise _BadRequest(422, f"pixels[{r}][{c}] must be an integer 0-255, not {value!r}")
            if not 0 <= value <= 255:
                raise _BadRequest(422, f"pixels[{r}][{c}] must be in 0-255, not {value!r}")
    return np.array(rows, dtype=np.uint8)


def _fields(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise _BadRequest(422, f"unknown field {names}; the fields are {', '.join(allowed)}")


def _flag(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise _BadRequest(422, f"{name} must be true or false, not {value!r}")
    return value


def create_app(models: Mapping[str, ServedModel]) -> Starlette:
    """The draw-a-digit app serving ``models`` (built beforehand, e.g. by
    :func:`~pyrtlnet.web.load_models`).

    Routes: ``/`` the page; ``GET /api/models``; ``GET /api/samples``; ``POST /api/infer``;
    ``POST /api/trace`` (documented in :doc:`/pyrtlnet/web`).

    :param models: the served models by name; the first is the default of a request.
    :returns: the ASGI application.
    :raises ValueError: if ``models`` is empty.
    """
    if not models:
        raise ValueError("serve at least one model")
    served = dict(models)
    samples = sample_images()

    def model_of(data: dict[str, Any]) -> ServedModel:
        name = data.get("model", next(iter(served)))
        if not isinstance(name, str) or name not in served:
            names = ", ".join(served)
            raise _BadRequest(404, f"unknown model {name!r}; the served models are {names}")
        return served[name]

    async def list_models(request: Request) -> Response:
        return JSONResponse(
            {"models": [model.describe() for model in served.values()], "backends": BACKENDS}
        )

    async def list_samples(request: Request) -> Response:
        return JSONResponse({"samples": samples})

    async def infer(request: Request) -> Response:
        try:
            data = await _read_json(request)
            _fields(data, ("model", "pixels", "center"))
            model, pixels = model_of(data), _pixels(data)
            center = _flag(data, "center", False)
        except _BadRequest as error:
            return _error(error.status, str(error))
        return JSONResponse(await run_in_threadpool(model.infer, pixels, center=center))

    async def trace(request: Request) -> Response:
        try:
            data = await _read_json(request)
            _fields(data, ("model", "pixels", "center", "layer"))
            model, pixels = model_of(data), _pixels(data)
            center = _flag(data, "center", False)
            layer = data.get("layer", 0)
            layers = len(model.model.layers)
            if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < layers:
                raise _BadRequest(422, f"layer must be an integer 0 to {layers - 1}, not {layer!r}")
        except _BadRequest as error:
            return _error(error.status, str(error))
        return JSONResponse(
            await run_in_threadpool(model.trace, pixels, center=center, layer=layer)
        )

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _error(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    return Starlette(
        routes=[
            Mount(
                "/api",
                routes=[
                    Route("/models", list_models, methods=["GET"]),
                    Route("/samples", list_samples, methods=["GET"]),
                    Route("/infer", infer, methods=["POST"]),
                    Route("/trace", trace, methods=["POST"]),
                ],
            ),
            Mount("/", StaticFiles(directory=_STATIC, html=True)),
        ],
        exception_handlers={HTTPException: http_error},
    )
