"""The models a server runs: built once, run by every request, with and without a trace.

Nothing here knows about HTTP: the page's JSON is made of plain dictionaries built from the
backends' :class:`qnn_ref.Outputs`, so the API tests and the app share one definition of what an
answer holds.
"""

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qnn_ref import (
    Model,
    Outputs,
    default_model_path,
    load_mnist,
    preprocess,
    quantize_input,
    read_model,
    run_litert,
    run_numpy,
)

from .. import Accelerator, build, default_array
from ._centering import center_digit

__all__ = ["BACKENDS", "ServedModel", "load_models", "sample_images"]

#: The backends every request runs, in the order the page shows them.
BACKENDS = ("litert", "numpy", "hardware")
#: Short names of the models that ship with the packages.
_SHIPPED = {"mlp": default_model_path}
#: The engine registers and stream wires the trace reads (see ``make_tiled_matmul``): the feed
#: side (which job and tile the array computes, which operand word enters) and the drain side
#: (which result column leaves the array).
_FEED = ("running", "fin", "wait", "job", "mt", "nt", "kk")
_DRAIN = ("valid", "out_job", "out_m_tile", "out_column")
#: PyRTL builds into one global working block: builds in two threads at once would mix.
_BUILD_LOCK = threading.Lock()


@dataclass(eq=False)
class ServedModel:
    """One model, its hardware built once at start-up, and the lock that serializes its runs.

    :param name: the short name requests use.
    :param model: the model.
    :param accelerator: its gate-level hardware and simulation (one image per batch).
    :param array: ``(rows, cols)`` of the shared systolic array.
    """

    name: str
    model: Model
    accelerator: Accelerator
    array: tuple[int, int]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/models`` says about the model."""
        model = self.model
        return {
            "name": self.name,
            "file": model.path.name,
            "input_shape": list(model.input_shape),
            "layers": [
                {"in_features": layer.in_features, "units": layer.units, "relu": layer.relu}
                for layer in model.layers
            ],
            "array": list(self.array),
        }

    def infer(self, pixels: np.ndarray, *, center: bool) -> dict[str, Any]:
        """Run one image through LiteRT, NumPy and the gate-level simulation.

        :param pixels: ``uint8 [28, 28]``, white digit on black.
        :param center: first scale and centre the digit with :func:`center_digit` (a drawing);
            ``False`` for an image already prepared like MNIST's.
        :returns: the image the model saw, its int8 input, each backend's prediction and every
            layer's int8 output, the simulated cycles, whether every backend agrees on every
            int8 value and, where not, which tensors differ from LiteRT's and in how many
            values.
        """
        image = center_digit(pixels) if center else pixels
        x = preprocess(image[None], self.model.input_shape)
        q = quantize_input(self.model, x)
        with self._lock:
            result = self.accelerator.run(q)
        outputs: dict[str, Outputs] = {
            "litert": run_litert(self.model, x),
            "numpy": run_numpy(self.model, x),
            "hardware": result.outputs,
        }
        differences = _differences(outputs)
        return {
            "model": self.name,
            "image": image.tolist(),
            "input": {"shape": list(self.model.input_shape), "values": q[0].tolist()},
            "backends": {
                name: {
                    "prediction": int(out.predictions[0]),
                    "input": out.input[0].tolist(),
                    "layers": [layer[0].tolist() for layer in out.layers],
                }
                for name, out in outputs.items()
            },
            "agreement": not differences,
            "differences": differences,
            "cycles": result.cycles,
            "array": list(self.array),
        }

    def trace(self, pixels: np.ndarray, *, center: bool, layer: int) -> dict[str, Any]:
        """Run one image through a traced simulation and read one layer's schedule from it.

        Every request builds a fresh traced simulation with the fast simulator (about 0.3 s
        for the shipped model, build and run) because a trace only grows: one kept from
        start-up would hold every image ever traced. The page asks for it after the
        predictions are shown.

        :param pixels: as for :meth:`infer`.
        :param center: as for :meth:`infer`.
        :param layer: index of the layer to show.
        :returns: per cycle of that layer's span (cycle 0 samples ``start``), the tile the
            array computes (or ``None``) and the result column it drains (or ``None``), plus
            the measured cycles from ``start`` to ``done``.
        :raises ValueError: if ``layer`` is not a layer of the model.
        """
        layers = len(self.model.layers)
        if not 0 <= layer < layers:
            raise ValueError(
                f"layer must be 0 to {layers - 1} for model {self.name!r}, not {layer}"
            )
        image = center_digit(pixels) if center else pixels
        q = quantize_input(self.model, preprocess(image[None], self.model.input_shape))
        with _BUILD_LOCK:
            traced = build(self.model, array=self.array, simulator="fast", trace=True)
        traced.run(q)
        return _schedule(traced, layer, self.array)


def _differences(outputs: dict[str, Outputs]) -> list[dict[str, Any]]:
    """Where each backend's int8 values differ from LiteRT's: ``{"backend", "tensor",
    "values"}`` with ``tensor`` ``"input"`` or ``"layer L"`` and the count of differing values."""
    reference = outputs["litert"]
    found = []
    for name, other in outputs.items():
        pairs = [("input", reference.input, other.input)] + [
            (f"layer {index}", a, b)
            for index, (a, b) in enumerate(zip(reference.layers, other.layers, strict=True))
        ]
        for tensor, a, b in pairs:
            count = int(np.count_nonzero(a != b))
            if count:
                found.append({"backend": name, "tensor": tensor, "values": count})
    return found


def _schedule(traced: Accelerator, layer: int, array: tuple[int, int]) -> dict[str, Any]:
    """Read the shared engine's feed and drain wires from the simulation's own trace.

    The accelerator records every named wire; the engine's are found by the suffixes
    :func:`pyrtl_linalg.make_tiled_matmul` gives them. The array feeds (takes an operand word
    of tile ``(mt, nt)``) when it is running, not finishing and not waiting between tiles.
    """
    trace = traced._sim.tracer.trace
    engines = sorted(name[: -len("_out_column")] for name in trace if name.endswith("_out_column"))
    if len(engines) != 1:
        raise RuntimeError(f"expected one tiled engine in the traced design, found {engines}")
    # The stream's job and row tile are unnamed constants 0 in an engine where they cannot change.
    names = {key: f"{engines[0]}_{key}" for key in (*_FEED, *_DRAIN)}
    zeros, traced = [0] * len(trace["start"]), set(trace)  # `in trace` raises for a missing name
    wire = {key: trace[name] if name in traced else zeros for key, name in names.items()}
    start = trace["start"].index(1)
    done = start + trace["done"][start:].index(1)
    tiles: list[list[int] | None] = []
    drains: list[list[int] | None] = []
    for cycle in range(start, done + 1):
        feeding = wire["running"][cycle] and not wire["fin"][cycle] and not wire["wait"][cycle]
        on = feeding and wire["job"][cycle] == layer
        tiles.append([wire["mt"][cycle], wire["nt"][cycle], wire["kk"][cycle]] if on else None)
        out = wire["valid"][cycle] and wire["out_job"][cycle] == layer
        drains.append([wire["out_m_tile"][cycle], wire["out_column"][cycle]] if out else None)
    busy = [i for i in range(len(tiles)) if tiles[i] is not None or drains[i] is not None]
    first, last = busy[0], busy[-1]
    return {
        "layer": layer,
        "array": list(array),
        "first_cycle": first,
        "tiles": tiles[first : last + 1],
        "drains": drains[first : last + 1],
        "measured_cycles": done - start,
    }


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    return candidate


def load_models(paths: Sequence[str | os.PathLike[str]] = ()) -> dict[str, ServedModel]:
    """Read the shipped models and those at ``paths`` and build the hardware of each, once.

    The shipped default model is ``mlp``; a model given by path is named by its file name
    without the extension (``-2``, ``-3`` … added when two names clash). A path naming a model
    already served is not served twice.

    :param paths: more ``.tflite`` files to serve.
    :returns: the served models by name, shipped ones first.
    :raises qnn_ref.ModelError: if a file is not a model the hardware can run.
    """
    found: dict[Path, str] = {}
    for name, where in _SHIPPED.items():
        found.setdefault(Path(where()).resolve(), name)
    for path in paths:
        found.setdefault(Path(path).resolve(), _unique(Path(path).stem, set(found.values())))
    served = {}
    array = default_array(1)
    for path, name in found.items():
        model = read_model(path)
        with _BUILD_LOCK:  # one image per request: one copy of the design is enough
            accelerator = build(model, array=array, copies=1)
        served[name] = ServedModel(name=name, model=model, accelerator=accelerator, array=array)
    return served


def sample_images(count_per_digit: int = 1) -> list[dict[str, Any]]:
    """The first MNIST test images of each digit, for the page's row of examples.

    :param count_per_digit: how many images of each digit.
    :returns: ``{"index", "label", "pixels"}`` dictionaries, ordered by digit.
    """
    images, labels = load_mnist("test")
    samples = []
    for digit in range(10):
        for index in np.flatnonzero(labels == digit)[:count_per_digit]:
            samples.append({"index": int(index), "label": digit, "pixels": images[index].tolist()})
    return samples
