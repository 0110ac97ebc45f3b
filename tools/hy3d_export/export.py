"""The exporter shared by the tiny generator and the Hunyuan3D exporter.

Every graph leaves here with float32 inputs and outputs, the batch as its
first dynamic axis, opset 17 and constant folding, checked by onnx.checker.
Exports are byte-reproducible: torch runs single-threaded with deterministic
algorithms, and the producer fields and per-node doc strings (which carry
source locations and versions) are fixed before the file is written.
"""

import contextlib
import dataclasses
import json
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import onnx
import torch

GRAPH_NAMES = ("conditioner", "dit", "vae_latents", "vae_geometry")
OPSET = 17
PRODUCER = "hy3d_export"

# Protobuf refuses messages over 2 GiB, so bigger graphs keep their weights
# in one side file next to the .onnx (ONNX "external data").
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3 - 64 * 1024**2


@dataclasses.dataclass
class GraphSpec:
    """One graph of a model set: the module, sample inputs and the contract.

    shapes maps every input and output name to its manifest shape, with -1
    for each dynamic axis; dynamic_axes is derived from it.
    """

    name: str
    module: torch.nn.Module
    inputs: Tuple[torch.Tensor, ...]
    input_names: Sequence[str]
    output_names: Sequence[str]
    shapes: Dict[str, List[int]]
    max_batch: int
    file: Optional[str] = None
    # names of dynamic axes other than the batch, so that ONNX knows which
    # dynamic dims are equal (e.g. vae_geometry's points: queries and logits)
    axis_names: Dict[str, Dict[int, str]] = dataclasses.field(default_factory=dict)

    def dynamic_axes(self) -> Dict[str, Dict[int, str]]:
        axes = {}
        for tensor_name, shape in self.shapes.items():
            dims = {}
            for i, d in enumerate(shape):
                if d == -1:
                    named = self.axis_names.get(tensor_name, {}).get(i)
                    dims[i] = named or ("batch" if i == 0 else f"{tensor_name}_{i}")
            axes[tensor_name] = dims
        return axes

    def filename(self) -> str:
        return self.file or f"{self.name}.onnx"


@contextlib.contextmanager
def deterministic(seed: int = 0):
    """Single thread, deterministic kernels and a fixed seed for the block.

    Exported bytes depend on the weights, and constant folding evaluates
    parts of the graph: both must not vary with thread scheduling.
    """
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def give_layernorms_affine(module: torch.nn.Module) -> int:
    """Give every affine-less nn.LayerNorm a weight of ones and a bias of
    zeros (same function) and return how many it changed.

    torch 1.13 exports LayerNorm(elementwise_affine=False) at opset 17 as a
    LayerNormalization node with an empty scale input, which the ONNX checker
    rejects; Hunyuan3D's Flux-style blocks use exactly those norms.
    """
    n = 0
    for m in module.modules():
        if isinstance(m, torch.nn.LayerNorm) and m.weight is None:
            shape = m.normalized_shape
            m.weight = torch.nn.Parameter(torch.ones(shape), requires_grad=False)
            m.bias = torch.nn.Parameter(torch.zeros(shape), requires_grad=False)
            m.elementwise_affine = True
            n += 1
    return n


def _normalize(model: onnx.ModelProto) -> None:
    model.producer_name = PRODUCER
    model.producer_version = "1"
    model.doc_string = ""
    for node in model.graph.node:
        node.doc_string = ""


def export_graph(
    module: torch.nn.Module,
    inputs: Tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Dict[str, Dict[int, str]],
    path: str,
    opset: int = OPSET,
    output_shapes: Optional[Dict[str, Sequence[int]]] = None,
) -> onnx.ModelProto:
    """Export module to path as a checked ONNX graph and return it.
    Affine-less LayerNorms of module are given unit affine parameters first
    (see give_layernorms_affine). output_shapes (−1 = dynamic) replaces the
    output shapes torch infers, which name static dims it could not prove.

    Inputs and outputs must be float32: the engine contract keeps halves
    inside TensorRT and never at the host boundary.
    """
    for name, t in zip(input_names, inputs):
        if t.dtype != torch.float32:
            raise ValueError(f"input {name} is {t.dtype}, the contract wants float32")
    module.eval()
    give_layernorms_affine(module)
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        with torch.no_grad():
            torch.onnx.export(
                module,
                tuple(inputs),
                raw,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                export_params=True,
            )
        model = onnx.load(raw)  # also pulls in external tensors torch wrote
        _normalize(model)
        if output_shapes:
            _set_output_shapes(model, output_shapes, dynamic_axes)
        for out in model.graph.output:
            if out.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                raise ValueError(f"output {out.name} of {path} is not float32")
        size = model.ByteSize() if _fits_protobuf(model) else EXTERNAL_DATA_THRESHOLD + 1
        data_name = os.path.basename(path) + ".data"
        if os.path.exists(path + ".data"):
            os.remove(path + ".data")
        if size > EXTERNAL_DATA_THRESHOLD:
            onnx.save_model(
                model,
                path,
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_name,
                size_threshold=1024,
            )
            onnx.checker.check_model(path)  # by path: the only way past 2 GiB
        else:
            onnx.save_model(model, path)
            onnx.checker.check_model(model)
    return model


def _set_output_shapes(model, shapes, dynamic_axes) -> None:
    for out in model.graph.output:
        if out.name not in shapes:
            continue
        want = shapes[out.name]
        dims = out.type.tensor_type.shape.dim
        del dims[:]
        for i, d in enumerate(want):
            dim = dims.add()
            if d == -1:
                dim.dim_param = dynamic_axes.get(out.name, {}).get(i, f"{out.name}_{i}")
            else:
                dim.dim_value = d


def _fits_protobuf(model: onnx.ModelProto) -> bool:
    try:
        return model.ByteSize() < 2**31
    except Exception:  # protobuf raises once the message cannot be sized
        return False


def coarse_resolution(resolution: int, min_resolution: int = 63) -> int:
    """FlashVDM's first level: halve the octree resolution while the half
    stays ≥ min_resolution (384 → 96, 256 → 64, 128 → 64)."""
    r = resolution
    while r // 2 >= min_resolution:
        r //= 2
    return r


def _manifest_graph(spec: GraphSpec) -> dict:
    return {
        "onnx": spec.filename(),
        "inputs": [{"name": n, "shape": list(spec.shapes[n])} for n in spec.input_names],
        "outputs": [{"name": n, "shape": list(spec.shapes[n])} for n in spec.output_names],
        "max_batch": spec.max_batch,
    }


def write_manifest(path: str, manifest: dict, graphs: Sequence[GraphSpec]) -> dict:
    """Write manifest.json: the caller's fields plus the graph table."""
    m = dict(manifest)
    m["graphs"] = {g.name: _manifest_graph(g) for g in graphs}
    missing = [n for n in GRAPH_NAMES if n not in m["graphs"]]
    if missing:
        raise ValueError(f"model set lacks graphs {missing}")
    with open(path, "w") as f:
        json.dump(m, f, indent=2, sort_keys=False)
        f.write("\n")
    return m


def export_model_set(out_dir: str, manifest: dict, graphs: Sequence[GraphSpec], seed: int = 0) -> dict:
    """Export every graph into out_dir and write its manifest.json."""
    os.makedirs(out_dir, exist_ok=True)
    with deterministic(seed):
        for g in graphs:
            export_graph(
                g.module,
                g.inputs,
                g.input_names,
                g.output_names,
                g.dynamic_axes(),
                os.path.join(out_dir, g.filename()),
                output_shapes={n: g.shapes[n] for n in g.output_names},
            )
    return write_manifest(os.path.join(out_dir, "manifest.json"), manifest, graphs)
