"""The design without its simulation: ports, memories and word layouts, built with no simulator.

Layouts are checked against pyrtl-linalg's packing written out by hand here (word ``mt * k +
f`` holds lane ``i`` of image ``mt * R + i`` in bits ``[8 i, 8 i + 8)``), never against the
functions under test alone.
"""

import re
from pathlib import Path

import numpy as np
import pyrtl
import pytest

import pyrtlnet
import qnn_ref
from qnn_ref import Model


@pytest.fixture(scope="module")
def design(default_model: Model) -> pyrtlnet.Design:
    return pyrtlnet.build_design(pyrtlnet.make_plan(default_model, array=(3, 5), batch_size=4))


def test_design_needs_no_simulator(
    default_model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building, exporting and writing a testbench never build a PyRTL simulation."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a simulation was built")

    for simulator in (pyrtl.Simulation, pyrtl.FastSimulation, pyrtl.CompiledSimulation):
        monkeypatch.setattr(simulator, "__init__", refuse)
    plan = pyrtlnet.make_plan(default_model, array=(2, 4), batch_size=2)
    design = pyrtlnet.build_design(plan)
    expected = qnn_ref.golden(default_model, start=0, count=3)
    files = pyrtlnet.write_inference_testbench(tmp_path, design, expected)
    assert files.design.read_text().count("module pyrtlnet (") == 1
    pyrtlnet.export_verilog(design, tmp_path / "again.v")
    with pytest.raises(AssertionError, match="a simulation was built"):
        pyrtlnet.Accelerator(design, simulator="fast")


def test_ports(design: pyrtlnet.Design) -> None:
    """Names, directions and widths: addresses as deep as the memories, data R lanes wide, the
    cycle counter just wide enough for one batch."""
    plan = design.plan
    layout = {name: (port.direction, port.bits) for name, port in design.ports.items()}
    assert layout == {
        "start": ("input", 1),
        "in_we": ("input", 1),
        "in_addr": ("input", 9),  # 2 row tiles x 144 features = 288 words
        "in_data": ("input", 24),  # 3 lanes x 8 bits
        "out_addr": ("input", 5),  # 2 x 10 = 20 words
        "pred_addr": ("input", 1),  # 2 row tiles
        "done": ("output", 1),
        "cycles": ("output", plan.cycles_per_batch.bit_length()),
        "out_data": ("output", 24),
        "pred_data": ("output", 12),  # 3 lanes x 4 bits (indices 0..9)
    }
    wires = design.block.wirevector_subset((pyrtl.Input, pyrtl.Output))
    assert {w.name: w.bitwidth for w in wires} == {n: b for n, (_, b) in layout.items()}
    assert [m.name for m in design.activations] == ["act0", "act1", "act2"]
    assert all(
        1 << m.addrwidth >= words
        for m, words in zip(design.activations, (288, 36, 20), strict=True)
    )
    assert design.predictions.bitwidth == 12


def test_word_layouts(design: pyrtlnet.Design) -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (4, 144)).astype(np.int8)
    writes = design.input_writes(q)
    assert [a for a, _ in writes] == list(range(288))
    # word mt*144 + f: image 3*mt + i in bits [8i, 8i+8)
    for address, word in writes:
        mt, f = divmod(address, 144)
        for i in range(3):
            image = 3 * mt + i
            value = int(q[image, f]) & 0xFF if image < 4 else 0
            assert (word >> (8 * i)) & 0xFF == value

    y = rng.integers(-128, 128, (4, 18)).astype(np.int8)
    words = design.activation_words(0, y)
    assert [(a, m) for a, _, m in words] == [(a, 0xFFFFFF) for a in range(18)] + [
        (a, 0xFF) for a in range(18, 36)
    ]
    memory = {address: word for address, word, _ in words}
    np.testing.assert_array_equal(design.read_activations(0, memory, 4), y, strict=True)
    np.testing.assert_array_equal(design.read_activations(0, memory, 2), y[:2], strict=True)

    p = np.array([9, 0, 7, 8])
    preds = design.prediction_words(p)
    assert preds == [(0, 9 | 0 << 4 | 7 << 8, 0xFFF), (1, 8, 0xF)]
    back = design.read_predictions({a: w for a, w, _ in preds}, 4)
    np.testing.assert_array_equal(back, p, strict=True)  # 9 and 8 read unsigned


def test_missing_words_read_as_zero(design: pyrtlnet.Design) -> None:
    """A simulator's memory view may omit words never written (Simulation's dict)."""
    np.testing.assert_array_equal(
        design.read_activations(1, {}, 3), np.zeros((3, 10), np.int8), strict=True
    )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda d: d.activation_words(2, np.zeros((1, 10), np.int8)),
            ValueError,
            "layer must be an integer in [0, 1], not 2",
        ),
        (
            lambda d: d.activation_words(0, np.zeros((5, 18), np.int8)),
            ValueError,
            "outputs of layer 0 must be integers of shape [b, 18] with 1 <= b <= 4, not int8 "
            "of shape [5, 18]",
        ),
        (
            lambda d: d.prediction_words(np.zeros((2, 1), np.int64)),
            ValueError,
            "predictions must be integers of shape [b] with 1 <= b <= 4, not int64 of shape [2, 1]",
        ),
        (
            lambda d: d.read_predictions({}, 0),
            ValueError,
            "images in a batch must be an integer in [1, 4], not 0",
        ),
        (
            lambda d: d.input_writes(np.zeros((2, 100), np.int8)),
            ValueError,
            "quantized inputs must be an int8 array of shape [N, 144] with N >= 1, not int8 "
            "of shape [2, 100]",
        ),
        (
            lambda d: pyrtlnet.Accelerator(d.plan),
            TypeError,
            "an Accelerator simulates a Design (from pyrtlnet.build_design), not Plan",
        ),
    ],
)
def test_errors(
    design: pyrtlnet.Design, call: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call(design)  # type: ignore[operator]


def test_one_design_many_simulations(design: pyrtlnet.Design, default_model: Model) -> None:
    """Two simulators of the same design give the same bits and the same measured cycles."""
    golden = qnn_ref.golden(default_model, start=321, count=5)
    compiled = pyrtlnet.Accelerator(design).run(golden.input)
    fast = pyrtlnet.Accelerator(design, simulator="fast").run(golden.input)
    for ours, theirs in zip(compiled.outputs.layers, golden.layers, strict=True):
        np.testing.assert_array_equal(ours, theirs, strict=True)
    for ours, theirs in zip(fast.outputs.layers, golden.layers, strict=True):
        np.testing.assert_array_equal(ours, theirs, strict=True)
    np.testing.assert_array_equal(fast.predictions, golden.predictions, strict=True)
    # 1 + sum over layers of (T - 1) * max(k, R, C) + k + R + C + 3 + 9, T = ceil(4/3) * ceil(n/5):
    # layer 0 (k 144, n 18, T 8) 1172, layer 1 (k 18, n 10, T 4) 92.
    assert compiled.cycles == fast.cycles == 2 * (1 + 1172 + 92)
    assert compiled.batches == fast.batches == 2
