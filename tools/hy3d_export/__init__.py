"""hy3d_export turns PyTorch modules into the four ONNX graphs of an hy3d
model set (docs/engine-contract.md) and writes the set's manifest.json.

One exporter serves both the tiny reference models (tools/make-tiny-engines)
and Tencent's real Hunyuan3D checkpoints (tools/export-hunyuan3d), so the
graphs the tests run on CPU are produced by the same code path as the graphs
an operator builds TensorRT plans from.
"""

from .export import (  # noqa: F401
    GRAPH_NAMES,
    GraphSpec,
    coarse_resolution,
    deterministic,
    export_graph,
    export_model_set,
    write_manifest,
)
