"""convarith's ONNX model checker (needs the `onnx` package; --run and --bench also `onnxruntime`).

    python -m convarith.onnx MODEL.onnx [--input-shape NAME=1,3,224,224] [--sweep [INPUT:]AXIS[=LO-HI]]
                             [--run] [--bench] [--json FILE]

From Python:

    from convarith import onnx as cxo
    g = cxo.Graph("model.onnx", {"input": (1, 3, 224, 224)})
    report = cxo.check_model(g)              # every Conv/ConvTranspose/pool node, validated by convarith
    sweep = cxo.sweep_axis(g, axis=3)         # smallest valid width, sizes where skip connections disagree
"""

from ._check import NodeCheck, Report, check_model, format_report, format_sweep, propagate, sweep_axis
from ._graph import CONV_OPS, Graph
from ._run import bench_nodes, capture, one_node_model, prepare_run, random_inputs, run_nodes

__all__ = ["Graph", "CONV_OPS", "NodeCheck", "Report", "check_model", "sweep_axis", "propagate", "format_report",
           "format_sweep", "prepare_run", "random_inputs", "capture", "run_nodes", "bench_nodes", "one_node_model",
           "main"]


def main(argv=None):
    from .__main__ import main as _main
    return _main(argv)
