"""Clocked integer linear algebra in PyRTL."""

from ._argmax import make_argmax
from ._compiled import BatchDriver
from ._cycles import (
    FEED_LATENCY,
    PIPELINE_LATENCY,
    TileSlot,
    tile_period,
    tile_schedule,
    tiled_matmul_cycles,
    window_rows,
)
from ._elementwise import make_add, make_clamp, make_relu, make_saturate
from ._matrix import WireMatrix2D, to_signed
from ._native import (
    CACHE_VARIABLE,
    COPIES,
    NativeKernel,
    PortLayout,
    cache_directory,
    unsupported_reason,
)
from ._netlist import SimulationNetlist, simplify_for_simulation
from ._reduce import REDUCE_OPS, WindowReduce, make_window_reduce, window_reduce_cycles
from ._requant import (
    REQUANT_METHODS,
    float32_scale_fields,
    float64_scale_fields,
    make_requantize,
    pack_requant_constants,
    requant_stage_points,
    requant_word_bits,
    unpack_requant_constants,
)
from ._simulate import SIMULATORS, MatmulDesign, build_matmul, make_simulation, simulate_matmul
from ._systolic import PE_LATENCY, accumulator_bits, column_skews, make_systolic_array
from ._tiled import MatmulJob, TiledMatmul, make_tiled_matmul, pack_a, pack_b, unpack_a
from ._window import Window, WindowMode

__all__ = [
    "CACHE_VARIABLE",
    "COPIES",
    "FEED_LATENCY",
    "PE_LATENCY",
    "PIPELINE_LATENCY",
    "REDUCE_OPS",
    "REQUANT_METHODS",
    "SIMULATORS",
    "BatchDriver",
    "MatmulDesign",
    "MatmulJob",
    "NativeKernel",
    "PortLayout",
    "SimulationNetlist",
    "TileSlot",
    "TiledMatmul",
    "Window",
    "WindowMode",
    "WindowReduce",
    "WireMatrix2D",
    "accumulator_bits",
    "build_matmul",
    "cache_directory",
    "column_skews",
    "float32_scale_fields",
    "float64_scale_fields",
    "make_add",
    "make_argmax",
    "make_clamp",
    "make_relu",
    "make_requantize",
    "make_saturate",
    "make_simulation",
    "make_systolic_array",
    "make_tiled_matmul",
    "make_window_reduce",
    "pack_a",
    "pack_b",
    "pack_requant_constants",
    "requant_stage_points",
    "requant_word_bits",
    "simplify_for_simulation",
    "simulate_matmul",
    "tile_period",
    "tile_schedule",
    "tiled_matmul_cycles",
    "to_signed",
    "unpack_a",
    "unpack_requant_constants",
    "unsupported_reason",
    "window_reduce_cycles",
    "window_rows",
]
