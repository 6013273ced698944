"""Small building blocks of the clocked controllers (tiled engine, patch addresses, reductions)."""

import pyrtl


def pick(default: pyrtl.WireVector, *cases: tuple[pyrtl.WireVector, object]) -> pyrtl.WireVector:
    """Priority multiplexer: the value of the first case whose condition is high, else
    ``default`` (a register's ``next`` written as its update rules in priority order)."""
    result = pyrtl.as_wires(default)
    for condition, value in reversed(cases):
        result = pyrtl.select(condition, value, result)
    return result


def counter_bits(limit: int) -> int:
    """Bits of an unsigned counter that must hold ``limit`` (at least 1)."""
    return max(1, int(limit).bit_length())


def delayed(wire: pyrtl.WireVector, cycles: int, name: str) -> pyrtl.WireVector:
    """``wire`` ``cycles`` cycles later, through registers ``name_d1`` .. ``name_d<cycles>``
    (``wire`` itself for 0 cycles)."""
    for stage in range(cycles):
        reg = pyrtl.Register(len(wire), name=f"{name}_d{stage + 1}")
        reg.next <<= wire
        wire = reg
    return wire
