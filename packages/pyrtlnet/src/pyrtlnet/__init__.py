"""Gate-level int8 inference hardware in PyRTL, bit-exact with LiteRT.

Plan the hardware for a dense int8 ``.tflite`` model, build the design once, then stream images
through a simulation of it::

    import qnn_ref, pyrtlnet

    model = qnn_ref.read_model(qnn_ref.default_model_path())
    plan = pyrtlnet.make_plan(model, batch_size=4)   # a 4x16 array shared by every layer
    design = pyrtlnet.build_design(plan)             # the PyRTL block, ports, memory layouts
    accelerator = pyrtlnet.Accelerator(design)       # its CompiledSimulation
    result = accelerator.run(qnn_ref.load_mnist("test")[0][:10])
    result.outputs.layers[-1], result.predictions, result.cycles

(``pyrtlnet.build(model, batch_size=4)`` does all three.) The same design, with no simulator,
exports to Verilog with a self-checking testbench (:func:`export_verilog`,
:func:`write_inference_testbench`), runs in Verilator or Icarus Verilog (:func:`run_testbench`)
and synthesizes with yosys (:func:`run_yosys`).
"""

from ._accelerator import Accelerator, DesignError, InferenceResult, build
from ._axi import (
    AXI_ADDR_BITS,
    AXI_REGISTERS,
    AxiDesign,
    AxiField,
    AxiRegister,
    axi_input_frame,
    axi_output_frame,
    axi_output_masks,
    axi_register,
    build_axi,
)
from ._axi_testbench import AxiResult, AxiTestbenchFiles, run_axi_testbench, write_axi_testbench
from ._design import Design, Port, build_design
from ._parallel import ParallelResult, default_jobs, run_parallel
from ._plan import (
    ARCHITECTURES,
    DEFAULT_ARRAY,
    DEFAULT_COLS,
    MAX_DEFAULT_ROWS,
    MAX_MEMORY_WORDS,
    MAX_PROCESSING_ELEMENTS,
    ROUNDING_REQUANT_METHODS,
    SINK_LATENCY,
    Architecture,
    EnginePlan,
    Plan,
    default_array,
    make_plan,
    parse_array,
)
from ._synth import (
    LARGE_SYNTHESIS,
    PYNQ_Z2,
    Budget,
    BudgetCheck,
    FlowResult,
    SynthError,
    SynthEstimate,
    SynthProgress,
    SynthReport,
    check_budget,
    estimate_synthesis,
    run_yosys,
)
from ._vcd import VcdWriter, estimate_vcd_bytes, waveform_wires
from ._verilator import (
    VERILOG_SIMULATORS,
    SimulationError,
    SimulationResult,
    run_testbench,
    simulator_available,
)
from ._verilog import (
    BatchStimulus,
    ReadPort,
    TestbenchFiles,
    TestbenchPorts,
    WritePort,
    export_verilog,
    inference_batches,
    inference_ports,
    write_inference_testbench,
    write_testbench,
)

__all__ = [
    "ARCHITECTURES",
    "AXI_ADDR_BITS",
    "AXI_REGISTERS",
    "DEFAULT_ARRAY",
    "DEFAULT_COLS",
    "LARGE_SYNTHESIS",
    "MAX_DEFAULT_ROWS",
    "MAX_MEMORY_WORDS",
    "MAX_PROCESSING_ELEMENTS",
    "PYNQ_Z2",
    "ROUNDING_REQUANT_METHODS",
    "SINK_LATENCY",
    "VERILOG_SIMULATORS",
    "Accelerator",
    "Architecture",
    "AxiDesign",
    "AxiField",
    "AxiRegister",
    "AxiResult",
    "AxiTestbenchFiles",
    "BatchStimulus",
    "Budget",
    "BudgetCheck",
    "Design",
    "DesignError",
    "EnginePlan",
    "FlowResult",
    "InferenceResult",
    "ParallelResult",
    "Plan",
    "Port",
    "ReadPort",
    "SimulationError",
    "SimulationResult",
    "SynthError",
    "SynthEstimate",
    "SynthProgress",
    "SynthReport",
    "TestbenchFiles",
    "TestbenchPorts",
    "VcdWriter",
    "WritePort",
    "axi_input_frame",
    "axi_output_frame",
    "axi_output_masks",
    "axi_register",
    "build",
    "build_axi",
    "build_design",
    "check_budget",
    "default_array",
    "default_jobs",
    "estimate_synthesis",
    "estimate_vcd_bytes",
    "export_verilog",
    "inference_batches",
    "inference_ports",
    "make_plan",
    "parse_array",
    "run_axi_testbench",
    "run_parallel",
    "run_testbench",
    "run_yosys",
    "simulator_available",
    "waveform_wires",
    "write_axi_testbench",
    "write_inference_testbench",
    "write_testbench",
]
