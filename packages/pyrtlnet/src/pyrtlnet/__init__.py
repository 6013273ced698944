"""Gate-level int8 inference hardware in PyRTL, bit-exact with LiteRT.

Build the hardware for a dense int8 ``.tflite`` model once, then stream images through its
simulation::

    import qnn_ref, pyrtlnet

    model = qnn_ref.read_model(qnn_ref.default_model_path())
    accelerator = pyrtlnet.build(model, batch_size=4)   # a 4x16 array shared by every layer
    result = accelerator.run(qnn_ref.load_mnist("test")[0][:10])
    result.outputs.layers[-1], result.predictions, result.cycles

The same design exports to Verilog with a self-checking testbench (:func:`export_verilog`,
:func:`write_inference_testbench`), runs in Verilator or Icarus Verilog (:func:`run_testbench`)
and synthesizes with yosys (:func:`run_yosys`).
"""

from ._accelerator import Accelerator, DesignError, InferenceResult, build
from ._parallel import ParallelResult, default_jobs, run_parallel
from ._plan import (
    ARCHITECTURES,
    DEFAULT_ARRAY,
    DEFAULT_COLS,
    MAX_DEFAULT_ROWS,
    MAX_MEMORY_WORDS,
    MAX_PROCESSING_ELEMENTS,
    REQUANT_METHODS,
    SINK_LATENCY,
    Architecture,
    EnginePlan,
    Plan,
    default_array,
    make_plan,
    parse_array,
)
from ._synth import (
    PYNQ_Z2,
    Budget,
    BudgetCheck,
    FlowResult,
    SynthError,
    SynthReport,
    check_budget,
    run_yosys,
)
from ._verilator import SimulationError, SimulationResult, run_testbench, simulator_available
from ._verilog import (
    BatchStimulus,
    ReadPort,
    TestbenchFiles,
    TestbenchPorts,
    WritePort,
    export_verilog,
    inference_batches,
    write_inference_testbench,
    write_testbench,
)

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARRAY",
    "DEFAULT_COLS",
    "MAX_DEFAULT_ROWS",
    "MAX_MEMORY_WORDS",
    "MAX_PROCESSING_ELEMENTS",
    "PYNQ_Z2",
    "REQUANT_METHODS",
    "SINK_LATENCY",
    "Accelerator",
    "Architecture",
    "BatchStimulus",
    "Budget",
    "BudgetCheck",
    "DesignError",
    "EnginePlan",
    "FlowResult",
    "InferenceResult",
    "ParallelResult",
    "Plan",
    "ReadPort",
    "SimulationError",
    "SimulationResult",
    "SynthError",
    "SynthReport",
    "TestbenchFiles",
    "TestbenchPorts",
    "WritePort",
    "build",
    "check_budget",
    "default_array",
    "default_jobs",
    "export_verilog",
    "inference_batches",
    "make_plan",
    "parse_array",
    "run_parallel",
    "run_testbench",
    "run_yosys",
    "simulator_available",
    "write_inference_testbench",
    "write_testbench",
]
