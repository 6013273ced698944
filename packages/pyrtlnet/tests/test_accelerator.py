"""Gate-level inference against qnn-ref's golden vectors, every layer, bit for bit.

Golden values always come from LiteRT through :func:`qnn_ref.golden`, never from pyrtlnet.
Every batch the accelerator runs also checks that ``done`` rises exactly
``cycles_per_batch`` cycles after ``start`` and that the hardware's cycle counter agrees (it
raises :class:`pyrtlnet.DesignError` if not); cycle counts are compared with the formula
written out independently in :func:`_formula`.
"""

import dataclasses
import re

import numpy as np
import pyrtl
import pytest

import pyrtlnet
import qnn_ref
from qnn_ref import Model


def _assert_matches_golden(result: pyrtlnet.InferenceResult, golden: qnn_ref.Golden) -> None:
    np.testing.assert_array_equal(result.outputs.input, golden.input, strict=True)
    assert len(result.outputs.layers) == len(golden.layers)
    for ours, theirs in zip(result.outputs.layers, golden.layers, strict=True):
        np.testing.assert_array_equal(ours, theirs, strict=True)
    np.testing.assert_array_equal(result.predictions, golden.predictions, strict=True)


def test_default_model_thousand_images_streamed(default_model: Model) -> None:
    """1,000 test images, 125 batches streamed through one built native kernel (eight
    copies of the design: 16 calls)."""
    golden = qnn_ref.golden(default_model, start=0, count=1000)
    accelerator = pyrtlnet.build(default_model, array=(8, 16), batch_size=8)
    result = accelerator.run(golden.input)
    _assert_matches_golden(result, golden)
    assert result.batches == 125
    assert result.cycles == 125 * _formula(default_model, "shared", (8, 16), 8)  # measured


# (architecture, array, batch size, rounding, images): 1x1, arrays that divide neither the
# layer sizes nor the batch, batch 1 and larger, a short last batch, every rounding mode.
DEFAULT_CASES = [
    ("shared", (1, 1), 1, "xnnpack", 12),
    ("shared", (3, 5), 4, "builtin", 90),
    ("shared", (2, 7), 3, "reference", 40),
    ("shared", (4, 18), 16, "builtin", 150),
    ("per-layer", None, 1, "reference", 60),
    ("per-layer", None, 5, "xnnpack", 103),
]


@pytest.mark.parametrize(
    ("architecture", "array", "batch_size", "rounding", "count"), DEFAULT_CASES
)
def test_default_model_configurations(
    default_model: Model,
    architecture: str,
    array: tuple[int, int] | None,
    batch_size: int,
    rounding: str,
    count: int,
) -> None:
    start = 1000 + 100 * DEFAULT_CASES.index((architecture, array, batch_size, rounding, count))
    golden = qnn_ref.golden(default_model, start=start, count=count, rounding=rounding)
    accelerator = pyrtlnet.build(
        default_model,
        architecture=architecture,
        array=array,
        batch_size=batch_size,
        rounding=rounding,
    )
    _assert_matches_golden(accelerator.run(golden.input), golden)


def test_raw_images_are_quantized_like_every_backend(default_model: Model) -> None:
    golden = qnn_ref.golden(default_model, start=2000, count=5)
    images, _ = qnn_ref.load_mnist("test")
    accelerator = pyrtlnet.build(default_model, array=(2, 9), batch_size=2)
    _assert_matches_golden(accelerator.run(images[2000:2005]), golden)


# (model, architecture, array, batch size, rounding): every trained model on the shared array,
# some on per-layer arrays, every rounding mode.
TRAINED_CASES = [
    ("8x8-16", "shared", (1, 1), 1, "xnnpack"),
    ("8x8-16", "per-layer", None, 2, "reference"),
    ("16x16-20-12", "shared", (3, 8), 5, "builtin"),
    ("16x16-20-12", "per-layer", None, 1, "xnnpack"),
    ("10x10-9-7-5-11", "shared", (2, 4), 3, "reference"),
    ("10x10-9-7-5-11", "shared", (6, 3), 6, "xnnpack"),
    ("28x28-24", "shared", (4, 10), 4, "xnnpack"),
    ("28x28-24", "per-layer", None, 3, "builtin"),
]


@pytest.mark.parametrize(("name", "architecture", "array", "batch_size", "rounding"), TRAINED_CASES)
def test_trained_models(
    trained_models: dict[str, Model],
    name: str,
    architecture: str,
    array: tuple[int, int] | None,
    batch_size: int,
    rounding: str,
) -> None:
    model = trained_models[name]
    golden = qnn_ref.golden(model, start=3000, count=30, rounding=rounding)
    accelerator = pyrtlnet.build(
        model, architecture=architecture, array=array, batch_size=batch_size, rounding=rounding
    )
    result = accelerator.run(golden.input)
    _assert_matches_golden(result, golden)
    assert result.cycles == result.batches * _formula(model, architecture, array, batch_size)


@pytest.mark.parametrize("rounding", ["xnnpack", "builtin", "reference"])
def test_wide_accumulators(wide_model: Model, rounding: str) -> None:
    """Accumulators beyond 2**24 (float32 inexact) and a 33-bit engine output, every path."""
    golden = qnn_ref.golden(wide_model, start=0, count=40, rounding=rounding)
    accelerator = pyrtlnet.build(wide_model, array=(3, 5), batch_size=6, rounding=rounding)
    _assert_matches_golden(accelerator.run(golden.input), golden)
    hidden = golden.layers[0]
    assert np.mean((hidden > -20) & (hidden < 127)) > 0.25  # not everything is clamped


def test_trained_models_have_the_promised_shapes(trained_models: dict[str, Model]) -> None:
    shapes = {
        name: (model.input_shape, [layer.units for layer in model.layers])
        for name, model in trained_models.items()
    }
    assert shapes == {
        "8x8-16": ((8, 8), [16, 10]),
        "16x16-20-12": ((16, 16), [20, 12, 10]),
        "10x10-9-7-5-11": ((10, 10), [9, 7, 5, 11, 10]),
        "28x28-24": ((28, 28), [24, 10]),
    }
    per_channel = {name: model.layers[0].per_channel for name, model in trained_models.items()}
    assert per_channel == {
        "8x8-16": True,
        "16x16-20-12": False,
        "10x10-9-7-5-11": True,
        "28x28-24": False,
    }
    assert trained_models["16x16-20-12"].float_input
    assert not trained_models["16x16-20-12"].layers[1].relu


def _port_level_run(
    design: pyrtlnet.Design, batches: list[np.ndarray]
) -> tuple[list[int], list[int], list[tuple[list[int], list[int]]]]:
    """Drive the design only through its top-level ports, one cycle at a time, as a Verilog
    testbench would: returns the cycles from start to done counted here by stepping, the
    design's own ``cycles`` output once done is high, and the words read back."""
    with pyrtl.set_working_block(design.block):
        sim = pyrtl.FastSimulation()
    idle = {name: 0 for name, port in design.ports.items() if port.direction == "input"}
    stepped, counted, words = [], [], []
    for q in batches:
        for address, word in design.input_writes(q):
            sim.step({**idle, "in_we": 1, "in_addr": address, "in_data": word})
        sim.step({**idle, "start": 1})
        count = 1
        sim.step(idle)
        while sim.inspect("done") == 0:
            assert count < 10 * design.cycles_per_batch, "done never rose"
            sim.step(idle)
            count += 1
        stepped.append(count)
        counted.append(sim.inspect("cycles"))
        out_words, pred_words = [], []
        # The read ports register their address: each word comes out one cycle later.
        for address, _, _ in design.output_words(np.zeros((len(q), 10), np.int8)):
            sim.step({**idle, "out_addr": address})
            sim.step(idle)
            out_words.append(sim.inspect("out_data"))
        for address, _, _ in design.prediction_words(np.zeros(len(q), np.int64)):
            sim.step({**idle, "pred_addr": address})
            sim.step(idle)
            pred_words.append(sim.inspect("pred_data"))
        words.append((out_words, pred_words))
    return stepped, counted, words


@pytest.mark.parametrize(("architecture", "array"), [("shared", (3, 4)), ("per-layer", None)])
def test_ports_handshake_and_cycle_formula(
    default_model: Model, architecture: str, array: tuple[int, int] | None
) -> None:
    """done rises exactly as many cycles after start as the formula says, every batch, with no
    reset, and the design's cycle counter says the same; the read ports give the last layer's
    outputs and the predictions in the documented layout."""
    golden = qnn_ref.golden(default_model, start=500, count=7)
    plan = pyrtlnet.make_plan(default_model, architecture=architecture, array=array, batch_size=3)
    design = pyrtlnet.build_design(plan)
    batches = [golden.input[0:3], golden.input[3:6], golden.input[6:7]]
    stepped, counted, words = _port_level_run(design, batches)
    assert stepped == [_formula(default_model, architecture, array, 3)] * 3
    assert counted == stepped
    for (out_words, pred_words), first in zip(words, (0, 3, 6), strict=True):
        logits = golden.layers[-1][first : first + 3]
        predictions = golden.predictions[first : first + 3]
        for (_, word, mask), got in zip(design.output_words(logits), out_words, strict=True):
            assert got & mask == word & mask
        for (_, word, mask), got in zip(
            design.prediction_words(predictions), pred_words, strict=True
        ):
            assert got & mask == word & mask


def test_a_wrong_done_cycle_is_a_design_error(default_model: Model) -> None:
    """The driver checks done in the plan's cycle: a plan one cycle off is caught."""
    plan = pyrtlnet.make_plan(default_model, array=(2, 8), batch_size=2)
    late = dataclasses.replace(plan, cycles_per_batch=plan.cycles_per_batch + 1)
    accelerator = pyrtlnet.Accelerator(pyrtlnet.build_design(late))
    golden = qnn_ref.golden(default_model, start=0, count=2)
    expected = plan.cycles_per_batch
    with pytest.raises(
        pyrtlnet.DesignError,
        match=rf"^done was not high {expected + 1} cycles after start, as the plan says "
        rf"\(the cycle counter reads {expected}\)$",
    ):
        accelerator.run(golden.input)


def test_a_wrong_cycle_count_is_a_design_error(
    default_model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver reports the hardware's count, and refuses one that disagrees with the plan."""
    from pyrtlnet import _design

    counter = _design._cycle_counter

    def off_by_two(*args: pyrtl.WireVector | int) -> pyrtl.WireVector:
        cycles = args[-1]  # the plan's count, after the wires
        return (counter(*args) + 2)[: cycles.bit_length()]  # type: ignore[union-attr]

    monkeypatch.setattr(_design, "_cycle_counter", off_by_two)
    plan = pyrtlnet.make_plan(default_model, array=(1, 4))
    accelerator = pyrtlnet.Accelerator(pyrtlnet.build_design(plan), simulator="fast")
    golden = qnn_ref.golden(default_model, start=0, count=1)
    with pytest.raises(
        pyrtlnet.DesignError,
        match=rf"^the hardware counted {plan.cycles_per_batch + 2} cycles from start to done, "
        rf"the plan says {plan.cycles_per_batch}$",
    ):
        accelerator.run(golden.input)


def _formula(model: Model, architecture: str, array: tuple[int, int] | None, batch: int) -> int:
    """The documented cycle formula, written out independently of pyrtl-linalg's model."""
    shapes = [(layer.in_features, layer.units) for layer in model.layers]
    stages = 3 + 9  # the engine's pipeline registers, then the requantizers'
    if architecture == "per-layer":
        return sum(1 + k + batch + n + stages for k, n in shapes)
    rows, cols = array
    total = 1
    for k, n in shapes:
        tiles = -(-batch // rows) * -(-n // cols)
        total += (tiles - 1) * max(k, rows, cols) + k + rows + cols + stages
    return total


@pytest.mark.parametrize(
    ("architecture", "array", "batch_size", "expected"),
    [
        ("shared", (1, 16), 1, 365),
        ("shared", (1, 1), 1, 2 + 17 * 144 + 144 + 2 + 9 * 18 + 18 + 1 + 2 * 12),
        ("shared", (16, 18), 16, 1 + 144 + 34 + 12 + 18 + 34 + 12),
        ("per-layer", None, 1, (1 + 144 + 1 + 18 + 12) + (1 + 18 + 1 + 10 + 12)),
        ("per-layer", None, 10, (1 + 144 + 10 + 18 + 12) + (1 + 18 + 10 + 10 + 12)),
    ],
)
def test_cycle_formula(
    default_model: Model,
    architecture: str,
    array: tuple[int, int] | None,
    batch_size: int,
    expected: int,
) -> None:
    plan = pyrtlnet.make_plan(
        default_model, architecture=architecture, array=array, batch_size=batch_size
    )
    assert plan.cycles_per_batch == expected
    assert _formula(default_model, architecture, array, batch_size) == expected


def test_vcd(default_model: Model, tmp_path: pytest.TempPathFactory) -> None:
    accelerator = pyrtlnet.build(default_model, array=(2, 8), simulator="fast", trace=True)
    golden = qnn_ref.golden(default_model, start=9999, count=1)
    _assert_matches_golden(accelerator.run(golden.input), golden)
    path = tmp_path / "run.vcd"
    accelerator.write_vcd(path)
    text = path.read_text()
    assert "$var wire 1" in text
    assert " done " in text


@pytest.mark.parametrize("rounding", ["xnnpack", "builtin", "reference"])
def test_pyrtl_compiled_simulation_agrees(default_model: Model, rounding: str) -> None:
    """PyRTL's own CompiledSimulation of the design (an independent C generator) gives the
    native kernel's bits on every kernel path, at batch 4 on a 4x8 array."""
    golden = qnn_ref.golden(default_model, start=300, count=9, rounding=rounding)
    native = pyrtlnet.build(default_model, array=(4, 8), batch_size=4, rounding=rounding)
    compiled = pyrtlnet.Accelerator(native.design, simulator="compiled")
    assert type(native._driver.sim).__name__ == "NativeKernel"
    assert type(compiled._driver.sim).__name__ == "CompiledSimulation"
    assert compiled.copies == 1
    for accelerator in (native, compiled):
        _assert_matches_golden(accelerator.run(golden.input), golden)


def test_plain_simulation(default_model: Model) -> None:
    """The slowest simulator gives the same bits (and is why it is not the default)."""
    golden = qnn_ref.golden(default_model, start=7, count=1, rounding="builtin")
    accelerator = pyrtlnet.build(default_model, simulator="simulation", rounding="builtin")
    _assert_matches_golden(accelerator.run(golden.input), golden)
    with pytest.raises(
        ValueError, match=r"^build the accelerator with trace=True to write a waveform$"
    ):
        accelerator.write_vcd("never.vcd")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"simulator": "verilator"},
            "simulator must be one of native, compiled, fast, simulation, not 'verilator'",
        ),
        (
            {"trace": True},
            "a waveform needs the fast or simulation simulator "
            "(NativeKernel shows only top-level ports)",
        ),
        (
            {"trace": True, "simulator": "compiled"},
            "a waveform needs the fast or simulation simulator "
            "(CompiledSimulation shows only top-level ports)",
        ),
    ],
)
def test_build_errors(default_model: Model, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        pyrtlnet.build(default_model, **kwargs)


def test_run_rejects_wrong_inputs(default_model: Model) -> None:
    accelerator = pyrtlnet.build(default_model, array=(1, 4))
    with pytest.raises(
        ValueError,
        match=r"^quantized inputs must be an int8 array of shape \[N, 144\] with N >= 1, "
        r"not int16 of shape \[2, 144\]$",
    ):
        accelerator.run(np.zeros((2, 144), np.int16))
    with pytest.raises(
        ValueError,
        match=r"^images must be a uint8 array of shape \[N, height, width\], not uint8 of "
        r"shape \[144\]$",
    ):
        accelerator.run(np.zeros(144, np.uint8))
    with pytest.raises(ValueError, match=r"^a batch holds at most 1 images, not 2$"):
        accelerator.design.input_writes(np.zeros((2, 144), np.int8))


def test_ties_follow_each_kernel_path(tmp_path) -> None:
    """acc / 16 with exact ties: the three LiteRT paths round them three ways, and so must we.

    LiteRT is the oracle: the reference path rounds ``double(acc) * scale`` half away from
    zero (``-8 / 16`` gives -1, where a Q31 single rounding gives 0), XNNPACK rounds ties to
    even, and the builtin path's double rounding takes ``7 / 16`` to 1.
    """
    from qnn_ref.testing import write_model

    layer = qnn_ref.DenseLayer(
        index=0,
        weights=np.zeros((1, 6), np.int8),
        bias=np.array([8, -8, 24, -24, 7, -7], np.int32),
        input_scale=1.0,
        input_zero_point=0,
        weight_scales=np.full(6, 2.0**-4, np.float32),
        per_channel=False,
        output_scale=1.0,
        output_zero_point=0,
        relu=False,
    )
    model = qnn_ref.read_model(write_model(tmp_path / "ties.tflite", [layer]))
    x = np.zeros((1, 1), np.float32)
    seen = set()
    for rounding in qnn_ref.ROUNDINGS:
        litert = qnn_ref.run_litert(model, x, rounding=rounding)
        accelerator = pyrtlnet.build(model, array=(1, 4), batch_size=1, rounding=rounding)
        ours = accelerator.run(litert.input).outputs.layers[0]
        np.testing.assert_array_equal(ours, litert.layers[0], strict=True)
        seen.add(tuple(ours[0].tolist()))
    assert len(seen) == 3  # the paths really differ here


def _count_driver_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The cycles of every ``BatchDriver.run`` call from now on, as they happen."""
    from pyrtl_linalg import BatchDriver

    cycles_of_calls: list[int] = []
    run = BatchDriver.run

    def counting_run(self: BatchDriver, cycles: int, *args: object, **kwargs: object) -> dict:
        cycles_of_calls.append(cycles)
        return run(self, cycles, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BatchDriver, "run", counting_run)
    return cycles_of_calls


@pytest.mark.parametrize("loading", ["stored", "port"])
def test_inputs_stored_directly_or_loaded_through_the_port(
    default_model: Model, monkeypatch: pytest.MonkeyPatch, loading: str
) -> None:
    """Both ways of loading a batch give LiteRT's outputs; storing the words in the input
    memory simulates no load cycles (the port is the way on a simulator that cannot)."""
    from pyrtl_linalg import BatchDriver

    if loading == "port":
        monkeypatch.setattr(BatchDriver, "writes_memories", property(lambda self: False))
    stepped = _count_driver_runs(monkeypatch)
    accelerator = pyrtlnet.build(default_model, array=(4, 8), batch_size=4)
    golden = qnn_ref.golden(default_model, start=100, count=10)  # a short last batch
    _assert_matches_golden(accelerator.run(golden.input), golden)
    loads = default_model.in_features if loading == "port" else 0  # one word per feature
    # Stored inputs: the three batches run side by side, one per copy of the design, in one
    # call; through the port (the same Inputs in every copy) one batch per call.
    assert accelerator.copies == (1 if loading == "port" else pyrtlnet.DEFAULT_COPIES)
    calls = 3 if loading == "port" else 1
    assert stepped == [loads + 1 + accelerator.cycles_per_batch] * calls
    assert accelerator.simulated_cycles(10) == sum(stepped)


@pytest.mark.parametrize("copies", [1, 4])
def test_copies_of_the_design_run_batches_side_by_side(
    default_model: Model, monkeypatch: pytest.MonkeyPatch, copies: int
) -> None:
    """Eleven batches on ``copies`` copies: ceil(11 / copies) simulation calls, the last with
    fewer batches than copies, every image as LiteRT computes it, cycles counted per batch."""
    calls = _count_driver_runs(monkeypatch)
    accelerator = pyrtlnet.build(default_model, array=(1, 4), copies=copies)
    assert accelerator.copies == copies
    golden = qnn_ref.golden(default_model, start=40, count=11)
    result = accelerator.run(golden.input)
    _assert_matches_golden(result, golden)
    assert len(calls) == -(-11 // copies)
    assert result.batches == 11
    assert result.cycles == 11 * accelerator.cycles_per_batch
