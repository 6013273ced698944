"""Write a simulation's waveform as a VCD file while it runs, a batch of cycles at a time.

PyRTL's :meth:`pyrtl.SimulationTrace.print_vcd` writes a whole trace at the end, every wire in
every cycle, so a run over many images holds its whole history in memory first. A
:class:`VcdWriter` takes the trace of each batch as it finishes (the caller then empties the
trace), and writes only the values that changed, so memory stays that of one batch and the
file grows with the activity of the design, not its size times the cycles.

The file follows PyRTL's timing: cycle ``c`` starts at time ``10 * c`` with a rising ``clk``
and the values of that cycle, ``clk`` falls at ``10 * c + 5``. Wires are grouped in scopes
taken from their names: ``e0_mm_sa_pe0_3_acc`` is ``acc`` in scope ``e0.mm.sa.pe0.3``, a
prefix becoming a scope where at least two recorded wires share it (so ``in_addr`` and
``in_data`` sit in ``in``, a lone ``cycle_counter`` stays at the top). PyRTL's constants
(``const_*``) and unnamed temporaries (``tmp*``) are left out.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

import pyrtl

__all__ = ["VcdWriter", "estimate_vcd_bytes", "waveform_wires"]

#: Time units per clock cycle (PyRTL's ``print_vcd`` uses the same).
_PERIOD = 10
#: Characters VCD allows in identifier codes.
_ID_CHARS = [chr(c) for c in range(33, 127)]


def waveform_wires(block: pyrtl.Block) -> list[pyrtl.WireVector]:
    """The wires worth a waveform: every named wire of ``block``, no constants or temporaries.

    :param block: The design.
    :returns: The wires, sorted by name.
    """
    return sorted(
        (
            wire
            for wire in block.wirevector_set
            if not isinstance(wire, pyrtl.Const) and not wire.name.startswith(("tmp", "const_"))
        ),
        key=lambda wire: wire.name,
    )


def _identifier(index: int) -> str:
    """The ``index``-th short VCD identifier code (``!``, ``"``, ..., ``!!``, ...)."""
    code = ""
    index += 1
    while index:
        index, digit = divmod(index - 1, len(_ID_CHARS))
        code = _ID_CHARS[digit] + code
    return code


def _scopes(names: Iterable[str]) -> dict[str, tuple[list[str], str]]:
    """Each name's scopes and leaf: ``_``-prefixes that at least two names share."""
    names = list(names)
    shared = Counter(
        "_".join(parts[:end])
        for parts in (name.split("_") for name in names)
        for end in range(1, len(parts))
    )
    found = {}
    for name in names:
        parts = name.split("_")
        depth = 0
        while depth < len(parts) - 1 and shared["_".join(parts[: depth + 1])] >= 2:
            depth += 1
        found[name] = (parts[:depth], "_".join(parts[depth:]))
    return found


def estimate_vcd_bytes(wires: Sequence[pyrtl.WireVector], cycles: int) -> int:
    """An upper bound of the size of a VCD of ``wires`` over ``cycles``: every wire changing
    in every cycle (a real design changes far less; the bound is what a caller can promise).

    :param wires: The recorded wires (e.g. :func:`waveform_wires`).
    :param cycles: Simulated cycles.
    :returns: Bytes.
    """
    ids = [len(_identifier(i)) for i in range(len(wires) + 1)]
    # "b<bits> <id>\n" per multi-bit wire, "<bit><id>\n" per 1-bit wire.
    per_cycle = sum(
        (w.bitwidth + 3 if w.bitwidth > 1 else 2) + size
        for w, size in zip(wires, ids, strict=False)
    )
    clock = 2 * (ids[-1] + 2)  # clk rises and falls
    stamps = 2 * (len(str(_PERIOD * max(cycles, 1))) + 2)
    return cycles * (per_cycle + clock + stamps)


class VcdWriter:
    """A VCD file written as a simulation runs: the header at once, then batches of cycles.

    :param file: An open text file; the writer appends to it and never closes it.
    :param wires: The wires recorded (their names and widths).
    :param module: The name of the top scope.
    """

    def __init__(self, file: TextIO, wires: Sequence[pyrtl.WireVector], *, module: str) -> None:
        self._file = file
        self._widths = {wire.name: wire.bitwidth for wire in wires}
        names = sorted(self._widths)
        self._ids = {name: _identifier(i + 1) for i, name in enumerate(names)}
        self._clock = _identifier(0)
        self._last: dict[str, int] = {}
        #: Cycles written so far.
        self.cycles = 0
        self._header(module, names)

    def _header(self, module: str, names: list[str]) -> None:
        lines = ["$timescale 1ns $end", f"$scope module {module} $end"]
        lines.append(f"$var wire 1 {self._clock} clk $end")
        current: list[str] = []
        tree = _scopes(names)
        for name in sorted(names, key=lambda n: (tuple(tree[n][0]), tree[n][1])):
            scopes, leaf = tree[name]  # sorted by scopes: each scope's wires come together
            common = 0
            while common < min(len(current), len(scopes)) and current[common] == scopes[common]:
                common += 1
            lines += ["$upscope $end"] * (len(current) - common)
            lines += [f"$scope module {scope} $end" for scope in scopes[common:]]
            current = scopes
            lines.append(f"$var wire {self._widths[name]} {self._ids[name]} {leaf} $end")
        lines += ["$upscope $end"] * (len(current) + 1)
        lines.append("$enddefinitions $end")
        self._file.write("\n".join(lines) + "\n")

    def _value(self, name: str, value: int) -> str:
        if self._widths[name] == 1:
            return f"{value}{self._ids[name]}"
        return f"b{value:b} {self._ids[name]}"

    def write(self, trace: Mapping[str, Sequence[int]]) -> None:
        """Append the cycles of ``trace`` (each wire's values, one per cycle, all equally long).

        Only the wires whose value differs from the cycle before are written (all of them in
        the first cycle of the file).

        :param trace: Values by wire name, e.g. ``sim.tracer.trace``; names not given to the
            writer are ignored.
        """
        columns = [(name, trace[name]) for name in self._ids]
        count = len(columns[0][1]) if columns else 0
        out = []
        for step in range(count):
            time = _PERIOD * (self.cycles + step)
            out.append(f"#{time}\n1{self._clock}\n")
            for name, values in columns:
                value = values[step]
                if self._last.get(name) != value:
                    self._last[name] = value
                    out.append(self._value(name, value) + "\n")
            out.append(f"#{time + _PERIOD // 2}\n0{self._clock}\n")
        self._file.write("".join(out))
        self.cycles += count

    def close(self) -> None:
        """Write the time at which the last cycle ends (the file stays open)."""
        self._file.write(f"#{_PERIOD * self.cycles}\n")
