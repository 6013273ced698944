"""The draw-a-digit page: your handwriting through LiteRT, NumPy and the gate-level hardware.

``pyrtlnet serve`` (the ``web`` extra: ``pip install 'pyrtlnet[web]'``) builds the hardware of
each served model once, then serves a page and a JSON API on ``http://127.0.0.1:8000/``. The
pieces, for use from Python::

    from pyrtlnet.web import create_app, load_models
    app = create_app(load_models())     # an ASGI app: uvicorn, or Starlette's TestClient

:func:`center_digit` is the MNIST preparation of a drawing (bounding box into 20x20, centre of
mass at the centre of 28x28) that the server applies before the model's own preprocessing.
"""

from ._app import MAX_REQUEST_BYTES, create_app
from ._centering import BOX_SIZE, IMAGE_SIZE, center_digit
from ._serve import open_socket, run_server
from ._service import BACKENDS, ServedModel, load_models, sample_images

__all__ = [
    "BACKENDS",
    "BOX_SIZE",
    "IMAGE_SIZE",
    "MAX_REQUEST_BYTES",
    "ServedModel",
    "center_digit",
    "create_app",
    "load_models",
    "open_socket",
    "run_server",
    "sample_images",
]
