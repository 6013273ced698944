"""Simulate a :class:`~pyrtlnet.Design` and stream batches of images through it.

The driver talks to the design only through its top-level ports and memories: per batch it
stores the quantized inputs in the input memory, raises ``start`` for one cycle, lets the
simulation run exactly :attr:`Accelerator.cycles_per_batch` cycles, checks that ``done`` is high
in that cycle and that the hardware's own ``cycles`` counter agrees, and reads every layer's
activation memory and the prediction memory. The design is idle again after ``done``, so the
next batch follows with no rebuild and no reset.

Speed comes from doing no Python per simulated cycle and simulating no cycle the computation
does not need: the input words (packed with NumPy, never as Python integers) go straight into
the input memory with :meth:`pyrtl_linalg.BatchDriver.write_memory`, then the start pulse and
the computation are one :class:`~pyrtl_linalg.BatchDriver` call, which hands the batch's
stimulus to the compiled kernel (a :class:`pyrtl_linalg.NativeKernel`, or
:class:`pyrtl.CompiledSimulation` for a design it cannot compile) as one NumPy buffer, and
results are read from memory afterwards (as NumPy words) instead of being traced cycle by cycle.
The native kernel simulates :attr:`Accelerator.copies` copies of the design side by side, one
per lane of its SIMD vectors: each copy gets its own batch in its input memory, one call runs
them all, and each copy's memories give its batch's outputs. Loading through the
``in_we``/``in_addr``/``in_data`` write port instead would cost one simulated cycle per word
(for a batch of the 144-18-10 MLP, 144 of its 516 cycles). The port is still used
when a waveform is recorded (it shows how a host feeds the hardware) and on a simulator whose
memories cannot be written directly (a CompiledSimulation of an untested PyRTL release), with
one batch per call.
"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import pyrtl

from pyrtl_linalg import SIMULATORS, BatchDriver, make_simulation
from qnn_ref import Model, Outputs, preprocess, quantize_input

from ._design import Design, build_design
from ._plan import Plan, make_plan
from ._validate import check_choice
from ._vcd import VcdWriter, estimate_vcd_bytes, waveform_wires

__all__ = [
    "ACCELERATOR_SIMULATORS",
    "DEFAULT_COPIES",
    "Accelerator",
    "DesignError",
    "InferenceResult",
    "build",
]

#: The simulators an :class:`Accelerator` runs on, fastest first: ``"native"``
#: (:class:`pyrtl_linalg.NativeKernel`), then PyRTL's own ``"compiled"``
#: (:class:`pyrtl.CompiledSimulation`), ``"fast"`` and ``"simulation"``.
ACCELERATOR_SIMULATORS: tuple[str, ...] = ("native", *SIMULATORS)

#: The name of each simulator's class, for reports.
SIMULATOR_CLASSES: dict[str, str] = {
    "native": "NativeKernel",
    **{name: simulator.__name__ for name, simulator in SIMULATORS.items()},
}

#: Copies of a design the native kernel runs side by side by default: eight 64-bit lanes
#: fill a 512-bit vector. On the batch-16 design eight batches take about 3.5 times one.
DEFAULT_COPIES = 8

#: The top scope of a waveform: the name of the exported Verilog module.
_WAVEFORM_SCOPE = "pyrtlnet"


@dataclass(frozen=True, eq=False)
class InferenceResult:
    """What :meth:`Accelerator.run` returns.

    :param outputs: the quantized inputs, every layer's int8 output and the predictions, read
        from the simulated hardware (a :class:`qnn_ref.Outputs`, comparable with LiteRT's).
    :param cycles: clock cycles from ``start`` to ``done`` summed over batches, as the
        hardware's ``cycles`` counter measured them.
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
    """A simulation of one :class:`~pyrtlnet.Design`, through which any number of images stream.

    Create it with :func:`build` (plan, design and simulation in one call) or from a design.
    """

    def __init__(
        self,
        design: Design,
        *,
        simulator: str = "native",
        trace: bool = False,
        copies: int = DEFAULT_COPIES,
    ) -> None:
        """Compile the simulation of ``design``.

        :param design: from :func:`pyrtlnet.build_design`; several accelerators may simulate
            the same design.
        :param simulator: one of :data:`ACCELERATOR_SIMULATORS`: ``"native"``
            (:class:`pyrtl_linalg.NativeKernel`, the fastest; a design it cannot compile runs
            on CompiledSimulation), ``"compiled"`` (:class:`pyrtl.CompiledSimulation`),
            ``"fast"`` (:class:`pyrtl.FastSimulation`) or ``"simulation"``
            (:class:`pyrtl.Simulation`).
        :param trace: record every named wire (:func:`waveform_wires`: no constants or
            temporaries) in every cycle, for :meth:`write_vcd` or ``run(..., vcd=file)``
            (needs the ``fast`` or ``simulation`` simulator: the compiled ones can only
            show ports).
        :param copies: with the ``native`` simulator, copies of the design simulated
            together, one batch in each (see :attr:`copies`): one of
            :data:`pyrtl_linalg.COPIES`.
        """
        if not isinstance(design, Design):
            raise TypeError(
                f"an Accelerator simulates a Design (from pyrtlnet.build_design), "
                f"not {type(design).__name__}"
            )
        check_choice("simulator", simulator, ACCELERATOR_SIMULATORS)
        if trace and simulator in ("native", "compiled"):
            raise ValueError(
                "a waveform needs the fast or simulation simulator "
                f"({SIMULATOR_CLASSES[simulator]} shows only top-level ports)"
            )
        began = time.perf_counter()
        #: The design simulated.
        self.design = design
        #: The simulator's name, one of :data:`ACCELERATOR_SIMULATORS`.
        self.simulator = simulator
        block = design.block
        if simulator in ("native", "compiled"):  # of a netlist made cheaper to simulate
            self._driver = BatchDriver.compile(
                block, outputs=("done", "cycles"), copies=copies, native=simulator == "native"
            )
        else:
            # Record only the two ports the driver inspects, unless a waveform is wanted.
            tracer = [block.wirevector_by_name["done"], block.wirevector_by_name["cycles"]]
            if trace:
                tracer = waveform_wires(block)
            sim = make_simulation(simulator=simulator, trace=tracer, block=block)
            self._driver = BatchDriver(sim)
        self._sim = self._driver.sim
        self._trace = trace
        self._port_loads = trace or not self._driver.writes_memories
        #: Seconds spent compiling the simulation.
        self.compile_seconds = time.perf_counter() - began

    # -- configuration ------------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The plan the design was built from."""
        return self.design.plan

    @property
    def block(self) -> pyrtl.Block:
        """The PyRTL block holding the design."""
        return self.design.block

    @property
    def model(self) -> Model:
        """The model the hardware runs."""
        return self.design.model

    @property
    def copies(self) -> int:
        """Copies of the design the simulation runs side by side, each on its own batch: a
        :meth:`run` simulates ``copies`` batches at a time, one per lane of the compiled
        kernel's SIMD vectors (see :data:`DEFAULT_COPIES`). 1 unless the simulator is
        ``native`` and the design suits :class:`pyrtl_linalg.NativeKernel`, and 1 when inputs
        are loaded through the write port (its Inputs are the same in every copy)."""
        return 1 if self._port_loads else self._driver.copies

    @property
    def batch_size(self) -> int:
        """Images per batch: the activation memories hold one batch."""
        return self.design.batch_size

    @property
    def cycles_per_batch(self) -> int:
        """Cycles from ``start`` to ``done`` of one batch by the plan's formula (see
        :func:`pyrtlnet.make_plan`); every batch run checks the hardware agrees."""
        return self.design.cycles_per_batch

    @property
    def build_seconds(self) -> float:
        """Seconds spent building the design and compiling its simulation."""
        return self.design.build_seconds + self.compile_seconds

    # -- running ------------------------------------------------------------------------------

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

    def _run_batches(self, batches: list[np.ndarray]) -> tuple[list[Outputs], int]:
        """Up to :attr:`copies` batches, one in each copy of the design, in one simulation
        call: their outputs and the cycles each took (the same in every copy)."""
        design, driver = self.design, self._driver
        planned = design.cycles_per_batch
        words = [_input_bytes(q, design.lanes) for q in batches]
        if self._port_loads:  # one copy: the trace or the simulator needs the write port
            loads = len(words[0])
            stimulus = {"in_we": np.ones(loads, np.uint8), "in_addr": np.arange(loads)}
            stimulus["in_data"] = words[0]
        else:
            for copy, batch_words in enumerate(words):
                driver.write_memory(design.activations[0], batch_words, copy=copy)
            loads, stimulus = 0, {}
        stimulus["start"] = np.zeros(loads + 1, np.uint8)
        stimulus["start"][loads] = 1
        # Any load cycles, the start cycle, then `planned` more: `done` is due in the last.
        ports = driver.run(loads + 1 + planned, stimulus, outputs=("done", "cycles"))
        done = np.atleast_1d(ports["done"][-1])[: len(batches)]
        measured = np.atleast_1d(ports["cycles"][-1])[: len(batches)]
        if not done.all():
            raise DesignError(
                f"done was not high {planned} cycles after start, as the plan says "
                f"(the cycle counter reads {int(measured[np.argmin(done)])})"
            )
        if (measured != planned).any():
            wrong = int(measured[np.argmax(measured != planned)])
            raise DesignError(
                f"the hardware counted {wrong} cycles from start to done, the plan says {planned}"
            )
        return [self._read_outputs(q, copy) for copy, q in enumerate(batches)], planned

    def _read_outputs(self, q: np.ndarray, copy: int) -> Outputs:
        """What copy ``copy`` of the design computed for the batch ``q``, from its memories."""
        design = self.design

        def memory(activations: pyrtl.MemBlock) -> np.ndarray:
            return self._driver.read_memory(activations, 1 << activations.addrwidth, copy=copy)

        layers = tuple(
            design.read_activations(layer, memory(activations), len(q))
            for layer, activations in enumerate(design.activations[1:])
        )
        predictions = design.read_predictions(memory(design.predictions), len(q))
        shaped = q.reshape(len(q), *self.model.layers[0].input_shape)  # LiteRT's input shape
        return Outputs(input=shaped, layers=layers, predictions=predictions)

    def run(
        self,
        data: np.ndarray,
        *,
        progress: Callable[[int], None] | None = None,
        vcd: TextIO | None = None,
    ) -> InferenceResult:
        """Run images through the simulated hardware, one batch of :attr:`batch_size` at a time.

        :param data: raw uint8 images ``[N, 28, 28]`` (quantized with :meth:`quantize`) or
            already quantized int8 inputs ``[N, in_features]``.
        :param progress: called with the number of images finished after every batch.
        :param vcd: a text file to write the run's waveform to as it goes (needs
            ``trace=True``): after each batch its cycles are appended (value changes only,
            see :class:`pyrtlnet.VcdWriter`) and the trace is emptied, so memory stays that of
            one batch however many images run. Cycle 0 of the file is the run's first.
        :returns: the hardware's int8 outputs of every layer, its predictions and the cycles
            it counted.
        :raises ValueError: if ``data`` is neither, or ``vcd`` is given without ``trace=True``.
        :raises DesignError: if a batch's ``done`` or cycle count disagrees with the plan.
        """
        data = np.asarray(data)
        q = self.design.check_inputs(self.quantize(data) if data.dtype == np.uint8 else data)
        writer = None
        if vcd is not None:
            writer = VcdWriter(vcd, self._waveform_wires(), module=_WAVEFORM_SCOPE)
            self._clear_trace()  # the file starts with this run
        parts = []
        cycles = 0
        group = self.batch_size * self.copies
        for first in range(0, len(q), group):
            chunk = q[first : first + group]
            batches = [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
            outputs, measured = self._run_batches(batches)
            parts += outputs
            cycles += measured * len(batches)
            if writer is not None:
                writer.write(self._sim.tracer.trace)
                self._clear_trace()
            if progress is not None:
                progress(first + len(chunk))
        if writer is not None:
            writer.close()
        return InferenceResult(outputs=Outputs.concat(parts), cycles=cycles, batches=len(parts))

    def _waveform_wires(self) -> list[pyrtl.WireVector]:
        if not self._trace:
            raise ValueError("build the accelerator with trace=True to write a waveform")
        return waveform_wires(self.block)

    def _clear_trace(self) -> None:
        for values in self._sim.tracer.trace.values():
            values.clear()

    def simulated_cycles(self, images: int) -> int:
        """Clock cycles the simulation steps to run ``images`` images: per batch, the
        ``start`` cycle and :attr:`cycles_per_batch`, after one cycle per input word when the
        words are loaded through the write port (always when a waveform is recorded); an upper
        bound when the last batch is short.

        :param images: number of images.
        """
        lanes = self.design.lanes
        loads = -(-self.batch_size // lanes) * self.model.in_features if self._port_loads else 0
        groups = -(-images // (self.batch_size * self.copies))
        return groups * (loads + 1 + self.cycles_per_batch)

    def estimate_vcd_bytes(self, images: int) -> int:
        """An upper bound of the size of the waveform of ``images`` images (every recorded
        wire changing in every cycle; see :func:`pyrtlnet.estimate_vcd_bytes`), to warn
        before writing a large one.

        :param images: number of images.
        """
        return estimate_vcd_bytes(waveform_wires(self.block), self.simulated_cycles(images))

    def write_vcd(self, file: str | os.PathLike[str]) -> None:
        """Write the waveform recorded so far as a VCD file (for GTKWave), in the format of
        ``run(..., vcd=file)``; the recording is every run since the last one given ``vcd``.

        Prefer ``run(..., vcd=file)`` for many images: this holds every cycle in memory first.

        :param file: the file to write.
        :raises ValueError: if the accelerator was built without ``trace=True``.
        """
        wires = self._waveform_wires()
        with open(file, "w") as out:
            writer = VcdWriter(out, wires, module=_WAVEFORM_SCOPE)
            writer.write(self._sim.tracer.trace)
            writer.close()


def _input_bytes(q: np.ndarray, lanes: int) -> np.ndarray:
    """The words :meth:`Design.input_writes` loads, as ``uint8 [words, lanes]``: word
    ``mt * in_features + f`` holds value ``f`` of images ``mt * lanes + i`` in byte ``i`` (the
    "A" layout of :func:`pyrtl_linalg.pack_a` for 8-bit values; rows past the batch are 0).

    A transposition in NumPy, where ``pack_a``'s Python integers would cost about a third of a
    16-image batch's simulation time.
    """
    tiles = -(-len(q) // lanes)
    padded = np.zeros((tiles * lanes, q.shape[1]), np.int8)
    padded[: len(q)] = q
    return padded.reshape(tiles, lanes, -1).transpose(0, 2, 1).reshape(-1, lanes).view(np.uint8)


def build(
    model: Model,
    *,
    architecture: str = "shared",
    array: tuple[int, int] | None = None,
    batch_size: int = 1,
    rounding: str = "xnnpack",
    simulator: str = "native",
    trace: bool = False,
    copies: int = DEFAULT_COPIES,
) -> Accelerator:
    """Plan and build the inference hardware for ``model`` and its simulation, once: the same
    as ``Accelerator(build_design(make_plan(model, ...)), simulator=..., trace=...)``.

    :param model: from :func:`qnn_ref.read_model`.
    :param architecture: ``"shared"`` (one array for every layer) or ``"per-layer"``.
    :param array: ``(rows, cols)`` of the shared array (default
        :func:`~pyrtlnet.default_array` of the batch size: ``min(batch_size, 16) x 16``).
    :param batch_size: images per batch.
    :param rounding: the LiteRT kernel path to reproduce bit for bit.
    :param simulator: one of :data:`ACCELERATOR_SIMULATORS` (see :class:`Accelerator`).
    :param trace: record a waveform (see :meth:`Accelerator.write_vcd`).
    :param copies: copies of the design the compiled simulator runs side by side (see
        :attr:`Accelerator.copies`).
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
    return Accelerator(build_design(plan), simulator=simulator, trace=trace, copies=copies)
