#!/usr/bin/python3
"""Writes the tiny ONNX models the ort tests load.

Run from anywhere with Debian's python3-onnx (1.12): /usr/bin/python3 ort/testdata/gen.py
Output is deterministic, so re-running it leaves the committed files unchanged.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = [helper.make_opsetid("", 13)]


def scalar(name, value, dtype):
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def save(name, nodes, inputs, outputs, initializers=(), check=True, opsets=OPSET):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="hy3d-ort-testdata")
    model.ir_version = 7  # understood by every ORT release we might load with
    if check:
        onnx.checker.check_model(model)
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(model.SerializeToString())


def f32(name, *dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


# y = 2x + 1 with a dynamic batch: the smallest model with the engine contract.
save(
    "affine",
    [helper.make_node("Mul", ["x", "two"], ["x2"]), helper.make_node("Add", ["x2", "one"], ["y"])],
    [f32("x", "B", 4)],
    [f32("y", "B", 4)],
    [scalar("two", 2.0, np.float32), scalar("one", 1.0, np.float32)],
)

# The same, in the style of IR version 3 exporters that list initializers
# among the graph inputs: callers feed only x.
save(
    "affine_legacy",
    [helper.make_node("Mul", ["x", "two"], ["x2"]), helper.make_node("Add", ["x2", "one"], ["y"])],
    [f32("x", "B", 4), f32("two"), f32("one")],
    [f32("y", "B", 4)],
    [scalar("two", 2.0, np.float32), scalar("one", 1.0, np.float32)],
)

# y = x with every dim open, for manifests that pin a dim the model leaves free.
save("identity", [helper.make_node("Identity", ["x"], ["y"])], [f32("x", "B", "N")], [f32("y", "B", "N")])

# A well-formed protobuf that ONNX Runtime refuses: an operator nobody defines.
save(
    "unknown_op",
    [helper.make_node("NoSuchOp", ["x"], ["y"], domain="hy3d.test")],
    [f32("x", "B", 2)],
    [f32("y", "B", 2)],
    check=False,
    opsets=OPSET + [helper.make_opsetid("hy3d.test", 1)],
)

# y = a * t[:, None]: two inputs of different rank sharing the batch, like the DiT's latents and timestep.
save(
    "scale",
    [
        helper.make_node("Unsqueeze", ["t", "axis1"], ["t2"]),
        helper.make_node("Mul", ["a", "t2"], ["y"]),
    ],
    [f32("a", "B", 3), f32("t", "B")],
    [f32("y", "B", 3)],
    [numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")],
)

# An int64 input violates the float32-only contract.
save(
    "int64_input",
    [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
    [helper.make_tensor_value_info("x", TensorProto.INT64, ["B", 2])],
    [f32("y", "B", 2)],
)

# So does an int64 output.
save(
    "int64_output",
    [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT64)],
    [f32("x", "B", 2)],
    [helper.make_tensor_value_info("y", TensorProto.INT64, ["B", 2])],
)

# A loop of 2^62 iterations: it only ends when the run is terminated, which is
# what the cancellation test needs.
body = helper.make_graph(
    [
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Add", ["v_in", "step"], ["v_out"]),
    ],
    "body",
    [
        helper.make_tensor_value_info("i", TensorProto.INT64, []),
        helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        f32("v_in", "B", 1),
    ],
    [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), f32("v_out", "B", 1)],
    [scalar("step", 1.0, np.float32)],
)
save(
    "spin",
    [helper.make_node("Loop", ["trips", "keep_going", "x"], ["y"], body=body)],
    [f32("x", "B", 1)],
    [f32("y", "B", 1)],
    [scalar("trips", 1 << 62, np.int64), scalar("keep_going", True, np.bool_)],
)

# y = x·W + b with W and b stored outside the graph, in external/affine.onnx.data, as the exporter
# stores the weights of graphs over 2 GB (protobuf's limit). ONNX Runtime finds that file relative to
# the model's path, so it must load such a model from its file, not from bytes.
os.makedirs(os.path.join(HERE, "external"), exist_ok=True)
external = helper.make_model(
    helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "external",
        [f32("x", "B", 3)],
        [f32("y", "B", 2)],
        [
            numpy_helper.from_array(np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32), "w"),
            numpy_helper.from_array(np.array([0.5, -0.5], dtype=np.float32), "b"),
        ],
    ),
    opset_imports=OPSET,
    producer_name="hy3d-ort-testdata",
)
external.ir_version = 7
onnx.checker.check_model(external)
onnx.save_model(
    external,
    os.path.join(HERE, "external", "affine.onnx"),
    save_as_external_data=True,
    all_tensors_to_one_file=True,
    location="affine.onnx.data",
    size_threshold=0,
)
