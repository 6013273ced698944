"""Index of the largest of several wires, as a balanced tree of comparators."""

from collections.abc import Sequence

import pyrtl

__all__ = ["make_argmax"]


def make_argmax(values: Sequence[pyrtl.WireVector], *, signed: bool = True) -> pyrtl.WireVector:
    """Index of the largest value; the lowest index wins ties, as in :func:`numpy.argmax`.

    Combinational (latency 0 cycles): a balanced binary tree of ``len(values) - 1``
    comparator-and-multiplexer nodes, ``ceil(log2(len(values)))`` levels deep. Each node
    passes on its left (lower-index) input unless the right one is strictly greater; since
    every index in a left subtree is below every index in the right one, ties resolve to the
    lowest index exactly as :func:`numpy.argmax` does.

    Unlike :func:`pyrtl.rtllib.matrix.argmax`, which works on a :class:`~pyrtl.rtllib.matrix.Matrix`
    of unsigned values, this takes a plain list of wires of any (even differing) bitwidths
    and compares them as two's complement by default.

    :param values: the wires to compare, at least one.
    :param signed: compare as two's complement (``True``) or as unsigned integers.
    :returns: the index, ``max(1, ceil(log2(len(values))))`` bits wide.
    """
    if isinstance(values, pyrtl.WireVector) or not isinstance(values, Sequence):
        raise TypeError(f"values must be a sequence of WireVectors, not {type(values).__name__}")
    if len(values) == 0:
        raise ValueError("values must hold at least one WireVector")
    for i, value in enumerate(values):
        if not isinstance(value, pyrtl.WireVector):
            raise TypeError(f"values[{i}] must be a WireVector, not {type(value).__name__}")
    index_bits = max(1, (len(values) - 1).bit_length())
    width = max(len(v) for v in values)
    extend = pyrtl.WireVector.sign_extended if signed else pyrtl.WireVector.zero_extended
    nodes = [(extend(v, width), pyrtl.Const(i, bitwidth=index_bits)) for i, v in enumerate(values)]
    while len(nodes) > 1:
        paired = []
        for left, right in zip(nodes[0::2], nodes[1::2], strict=False):
            take_right = pyrtl.signed_lt(left[0], right[0]) if signed else left[0] < right[0]
            paired.append(
                (
                    pyrtl.select(take_right, right[0], left[0]),
                    pyrtl.select(take_right, right[1], left[1]),
                )
            )
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes = paired
    return nodes[0][1]
