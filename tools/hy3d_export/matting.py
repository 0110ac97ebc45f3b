"""The optional matting graph (docs/engine-contract.md: image [B,3,H,W] in
[0, 1] → alpha [B,1,H,W]) made from rembg's u2net.onnx, the model Hunyuan3D's
BackgroundRemover runs on pictures without alpha.

rembg's U2netSession does, around the network: resize to 320² (LANCZOS),
divide by the picture's maximum, subtract ImageNet's mean and divide by its
std; take the first output's only channel and stretch it to [0, 1] by its
minimum and maximum; resize back. The graph built here holds everything but
the two resizes (hy3d's pipeline resizes bilinearly, since the graph has a
static 320² input), so hy3d feeds it plain RGB like every other graph. The
u2net file itself is the operator's (rembg downloads it to ~/.u2net); it is
never part of this repository.
"""

import json
import os
from typing import Optional

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 320
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EPS = 1e-6
PREFIX = "u2net/"


def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _reduce(op: str, x: str, out: str) -> onnx.NodeProto:
    """A per-picture reduction over C, H, W (axes as an attribute: opset < 18)."""
    return helper.make_node(op, [x], [out], axes=[1, 2, 3], keepdims=1)


def _graph_inputs(g: onnx.GraphProto):
    """The real inputs: old exporters also list initializers as inputs."""
    inits = {i.name for i in g.initializer}
    return [i for i in g.input if i.name not in inits]


def wrap_u2net(u2net: onnx.ModelProto) -> onnx.ModelProto:
    """u2net with rembg's normalization in front and its min-max stretch
    behind: image [B,3,320,320] (RGB in [0, 1]) → alpha [B,1,320,320]."""
    u = onnx.compose.add_prefix(u2net, PREFIX)
    inputs = _graph_inputs(u.graph)
    if len(inputs) != 1:
        raise ValueError(f"u2net should have one input, has {[i.name for i in inputs]}")
    net_in, net_out = inputs[0].name, u.graph.output[0].name
    if _opset(u) >= 18:
        # rembg's u2net.onnx is opset 11; from 18 on reductions take their
        # axes as an input, which this wrapper does not write.
        raise ValueError(f"u2net at opset {_opset(u)}: only opsets below 18 are supported")
    f32 = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.float32), name)  # noqa: E731
    consts = [f32("matting/eps", EPS),
              f32("matting/mean", np.reshape(MEAN, (1, 3, 1, 1))),
              f32("matting/std", np.reshape(STD, (1, 3, 1, 1)))]
    pre = [
        _reduce("ReduceMax", "image", "matting/peak"),
        helper.make_node("Max", ["matting/peak", "matting/eps"], ["matting/peak_safe"]),
        helper.make_node("Div", ["image", "matting/peak_safe"], ["matting/scaled"]),
        helper.make_node("Sub", ["matting/scaled", "matting/mean"], ["matting/centred"]),
        helper.make_node("Div", ["matting/centred", "matting/std"], [net_in]),
    ]
    post = [
        _reduce("ReduceMax", net_out, "matting/hi"),
        _reduce("ReduceMin", net_out, "matting/lo"),
        helper.make_node("Sub", [net_out, "matting/lo"], ["matting/above"]),
        helper.make_node("Sub", ["matting/hi", "matting/lo"], ["matting/range"]),
        helper.make_node("Max", ["matting/range", "matting/eps"], ["matting/range_safe"]),
        helper.make_node("Div", ["matting/above", "matting/range_safe"], ["alpha"]),
    ]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    alpha = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])
    # The network's own input is now an inner tensor fed by the normalization.
    graph = helper.make_graph(pre + list(u.graph.node) + post, "hy3d_matting", [image], [alpha],
                              initializer=list(u.graph.initializer) + consts)
    model = helper.make_model(graph, opset_imports=list(u.opset_import),
                              producer_name="hy3d tools/add-matting")
    model.ir_version = u.ir_version
    onnx.checker.check_model(model)
    return model


def add_matting(set_dir: str, u2net_path: str, max_batch: int = 1, name: Optional[str] = None) -> dict:
    """Write set_dir/matting.onnx from u2net_path and list it in the set's
    manifest.json; returns the manifest's matting entry."""
    model = wrap_u2net(onnx.load(u2net_path))
    file = name or "matting.onnx"
    onnx.save(model, os.path.join(set_dir, file))
    path = os.path.join(set_dir, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    entry = {"onnx": file, "inputs": [{"name": "image", "shape": [-1, 3, SIZE, SIZE]}],
             "outputs": [{"name": "alpha", "shape": [-1, 1, SIZE, SIZE]}], "max_batch": max_batch}
    manifest["graphs"]["matting"] = entry
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return entry
