"""Build the hardware once, then stream batches of images through its simulation.

The driver talks to the design only through its top-level ports and memories: per batch it
writes the quantized inputs through ``in_we``/``in_addr``/``in_data``, raises ``start`` for one
cycle, lets the simulation run exactly :attr:`Accelerator.cycles_per_batch` cycles, checks that
``done`` is high in that cycle, and reads every layer's activation memory and the prediction
memory. The design is idle again after ``done``, so the next batch follows with no rebuild and no
reset.

Speed comes from doing as little Python per simulated cycle as possible: with
:class:`pyrtl.CompiledSimulation` a whole batch (loading, start, computation) is a single
``run`` call of plain dictionaries, and results are read from memory afterwards instead of being
traced cycle by cycle.
"""

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyrtl

from pyrtl_linalg import SIMULATORS, make_simulation, pack_a, unpack_a
from qnn_ref import Model, Outputs, preprocess, quantize_input

from ._hardware import Hardware, build_hardware
from ._plan import Plan, make_plan

__all__ = ["Accelerator", "InferenceResult", "build"]


@dataclass(frozen=True, eq=False)
class InferenceResult:
    """What :meth:`Accelerator.run` returns.

    :param outputs: the quantized inputs, every layer's int8 output and the predictions, read
        from the simulated hardware (a :class:`qnn_ref.Outputs`, comparable with LiteRT's).
    :param cycles: simulated clock cycles from ``start`` to ``done``, summed over batches.
    :param batches: number of batches run.
    """

    outputs: Outputs
    cycles: int
    batches: int

    @property
    def predictions(self) -> np.ndarray:
        """int64 ``[N]``: the hardware's argmax of the last layer."""
        return self.outputs.predictions


class DesignError(RuntimeError):
    """The simulated design did not behave as its plan says (a bug, never a user error)."""


class Accelerator:
    """Gate-level inference hardware for one model, built once and simulated.

    Create it with :func:`build`. It holds the PyRTL design (:attr:`block`) and one simulation
    of it; :meth:`run` streams any number of images through that same simulation.
    """

    def __init__(self, plan: Plan, *, simulator: str = "compiled", trace: bool = False) -> None:
        """Build the design for ``plan`` and its simulation (prefer :func:`build`).

        :param plan: from :func:`pyrtlnet.make_plan`.
        :param simulator: ``"compiled"`` (:class:`pyrtl.CompiledSimulation`, fastest),
            ``"fast"`` (:class:`pyrtl.FastSimulation`) or ``"simulation"``
            (:class:`pyrtl.Simulation`).
        :param trace: record every named wire in every cycle for :meth:`write_vcd` (needs the
            ``fast`` or ``simulation`` simulator: the compiled one can only trace ports).
        """
        if simulator not in SIMULATORS:
            raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
        if trace and simulator == "compiled":
            raise ValueError(
                "a waveform needs the fast or simulation simulator "
                "(CompiledSimulation traces only top-level ports)"
            )
        began = time.perf_counter()
        #: The plan the hardware was built from (memories, ROM contents, cycle count).
        self.plan = plan
        #: The PyRTL simulator's name: ``"compiled"``, ``"fast"`` or ``"simulation"``.
        self.simulator = simulator
        self._hardware: Hardware = build_hardware(plan)
        tracer = None
        if trace:
            tracer = [w for w in self.block.wirevector_set if not w.name.startswith("tmp")]
        self._sim = make_simulation(simulator=simulator, trace=tracer, block=self.block)
        self._compiled = simulator == "compiled"
        self._trace = trace
        # The other simulators want a value for every Input in every cycle.
        inputs = sorted(w.name for w in self.block.wirevector_subset(pyrtl.Input))
        self._idle = {name: 0 for name in inputs}
        # The cycles after `start` but the last, with no inputs (shared: run() only reads them).
        self._compute: list[dict[str, int]] = [{}] * (plan.cycles_per_batch - 1)
        #: Seconds spent building the design and compiling its simulation.
        self.build_seconds = time.perf_counter() - began

    # -- configuration ------------------------------------------------------------------------

    @property
    def block(self) -> pyrtl.Block:
        """The PyRTL block holding the design (for export, synthesis, statistics)."""
        return self._hardware.block

    @property
    def model(self) -> Model:
        """The model the hardware runs."""
        return self.plan.model

    @property
    def batch_size(self) -> int:
        """Images per batch: the activation memories hold one batch."""
        return self.plan.batch_size

    @property
    def cycles_per_batch(self) -> int:
        """Cycles from ``start`` to ``done`` of one batch (:func:`pyrtlnet.make_plan` gives
        the formula); a batch of fewer images takes as long as a full one."""
        return self.plan.cycles_per_batch

    # -- the ports a testbench drives ---------------------------------------------------------

    def input_writes(self, q: np.ndarray) -> list[tuple[int, int]]:
        """``(in_addr, in_data)`` writes that load one batch of quantized inputs.

        :param q: int8 ``[b, in_features]`` with ``1 <= b <= batch_size``; only the row tiles
            holding these ``b`` images are written.
        :returns: the writes, in address order.
        """
        q = self._check_inputs(q, limit=self.batch_size)
        words = pack_a(q, rows=self.plan.lanes)
        return list(enumerate(words))

    def output_words(self, y: np.ndarray) -> list[tuple[int, int, int]]:
        """``(out_addr, word, care mask)`` of the last layer's memory holding ``y``.

        :param y: int8 ``[b, units]`` outputs of the last layer for a batch of ``b`` images.
        :returns: one triple per word; lanes past ``b`` have mask 0.
        """
        lanes = self.plan.lanes
        b, units = y.shape
        words = pack_a(np.asarray(y, np.int64), rows=lanes)
        result = []
        for address, word in enumerate(words):
            mt = address // units
            used = min(lanes, b - mt * lanes)
            result.append((address, word, (1 << (8 * used)) - 1))
        return result

    def prediction_words(self, p: np.ndarray) -> list[tuple[int, int, int]]:
        """``(pred_addr, word, care mask)`` of the prediction memory holding ``p``.

        :param p: ``[b]`` predictions of a batch of ``b`` images.
        :returns: one triple per row tile; lanes past ``b`` have mask 0.
        """
        bits, lanes = self.plan.index_bits, self.plan.lanes
        p = np.asarray(p, np.int64)
        words = pack_a(p[:, None], rows=lanes, bits=bits)
        return [
            (mt, word, (1 << (bits * min(lanes, len(p) - mt * lanes))) - 1)
            for mt, word in enumerate(words)
        ]

    # -- running ------------------------------------------------------------------------------

    def _check_inputs(self, q: np.ndarray, *, limit: int | None = None) -> np.ndarray:
        features = self.model.in_features
        q = np.asarray(q)
        if q.ndim != 2 or q.shape[1] != features or q.dtype != np.int8 or len(q) == 0:
            raise ValueError(
                f"quantized inputs must be an int8 array of shape [N, {features}] with N >= 1, "
                f"not {q.dtype} of shape {list(q.shape)}"
            )
        if limit is not None and len(q) > limit:
            raise ValueError(f"a batch holds at most {limit} images, not {len(q)}")
        return q

    def quantize(self, images: np.ndarray) -> np.ndarray:
        """Quantize raw images as every backend does (:func:`qnn_ref.preprocess`, then
        :func:`qnn_ref.quantize_input` with the hardware's rounding).

        :param images: uint8 ``[N, 28, 28]`` MNIST images.
        :returns: int8 ``[N, in_features]``.
        """
        images = np.asarray(images)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"images must be a uint8 array of shape [N, height, width], not {images.dtype} "
                f"of shape {list(images.shape)}"
            )
        x = preprocess(images, self.model.input_shape)
        return quantize_input(self.model, x, rounding=self.plan.rounding)

    def _steps(self, steps: list[dict[str, int]]) -> None:
        if self._compiled:
            self._sim.run(steps)
        else:
            for step in steps:
                self._sim.step({**self._idle, **step})

    def _read(self, memory: pyrtl.MemBlock, count: int) -> list[int]:
        view = self._sim.inspect_mem(memory)
        if self._compiled:
            return [view[address] for address in range(count)]
        return [view.get(address, 0) for address in range(count)]

    def _run_batch(self, q: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        plan, hardware = self.plan, self._hardware
        steps: list[dict[str, int]] = [
            {"in_we": 1, "in_addr": address, "in_data": word}
            for address, word in self.input_writes(q)
        ]
        steps.append({"start": 1})
        self._steps(steps + self._compute)
        # One more cycle, stepped on its own so the simulator records `done` for it.
        self._steps([{}])
        if self._sim.inspect("done") != 1:
            raise DesignError(
                f"done was not high {plan.cycles_per_batch} cycles after start, as the plan says"
            )
        b = len(q)
        tiles = math.ceil(b / plan.lanes)
        layers = [
            unpack_a(self._read(memory, tiles * width), m=b, k=width, rows=plan.lanes).astype(
                np.int8
            )
            for memory, width in zip(hardware.activations[1:], plan.widths[1:], strict=True)
        ]
        bits = plan.index_bits
        words = self._read(hardware.predictions, tiles)
        # unpack_a reads two's complement; the indices are unsigned.
        signed = unpack_a(words, m=b, k=1, rows=plan.lanes, bits=bits)[:, 0]
        return layers, signed & ((1 << bits) - 1)

    def run(
        self,
        data: np.ndarray,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> InferenceResult:
        """Run images through the simulated hardware, one batch of :attr:`batch_size` at a time.

        :param data: raw uint8 images ``[N, 28, 28]`` (quantized with :meth:`quantize`) or
            already quantized int8 inputs ``[N, in_features]``.
        :param progress: called with the number of images finished after every batch.
        :returns: the hardware's int8 outputs of every layer, its predictions and the cycles.
        :raises ValueError: if ``data`` is neither.
        """
        data = np.asarray(data)
        q = self._check_inputs(self.quantize(data) if data.dtype == np.uint8 else data)
        layers: list[list[np.ndarray]] = [[] for _ in self.model.layers]
        predictions = []
        batches = 0
        for first in range(0, len(q), self.batch_size):
            outs, pred = self._run_batch(q[first : first + self.batch_size])
            for store, out in zip(layers, outs, strict=True):
                store.append(out)
            predictions.append(pred)
            batches += 1
            if progress is not None:
                progress(min(first + self.batch_size, len(q)))
        outputs = Outputs(
            input=q,
            layers=tuple(np.concatenate(store) for store in layers),
            predictions=np.concatenate(predictions),
        )
        return InferenceResult(
            outputs=outputs, cycles=batches * self.cycles_per_batch, batches=batches
        )

    def write_vcd(self, file: str | os.PathLike[str]) -> None:
        """Write the waveform of everything simulated so far as a VCD file (for GTKWave).

        :param file: the file to write.
        :raises ValueError: if the accelerator was built without ``trace=True``.
        """
        if not self._trace:
            raise ValueError("build the accelerator with trace=True to write a waveform")
        with open(file, "w") as out:
            self._sim.tracer.print_vcd(out)


def build(
    model: Model,
    *,
    architecture: str = "shared",
    array: tuple[int, int] | None = None,
    batch_size: int = 1,
    rounding: str = "xnnpack",
    simulator: str = "compiled",
    trace: bool = False,
) -> Accelerator:
    """Plan and build the inference hardware for ``model`` and its simulation, once.

    :param model: from :func:`qnn_ref.read_model`.
    :param architecture: ``"shared"`` (one array for every layer) or ``"per-layer"``.
    :param array: ``(rows, cols)`` of the shared array (default
        :func:`~pyrtlnet.default_array` of the batch size: ``min(batch_size, 16) x 16``).
    :param batch_size: images per batch.
    :param rounding: the LiteRT kernel path to reproduce bit for bit.
    :param simulator: ``"compiled"``, ``"fast"`` or ``"simulation"``.
    :param trace: record a waveform (see :meth:`Accelerator.write_vcd`).
    :returns: the accelerator, ready to :meth:`~Accelerator.run`.
    :raises ValueError: for any invalid configuration (see :func:`make_plan`).
    """
    plan = make_plan(
        model,
        architecture=architecture,
        array=array,
        batch_size=batch_size,
        rounding=rounding,
    )
    return Accelerator(plan, simulator=simulator, trace=trace)
