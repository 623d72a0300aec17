"""MiniFASNet (Silent-Face-Anti-Spoofing) without PyTorch: read the .pth, a NumPy reference, an ONNX graph.

* `read_pth` parses a PyTorch checkpoint without importing torch. Both shipped checkpoints use the legacy
  (pre-1.6) format: four pickles in a row (magic number, protocol version, system info, the state dict whose
  tensors point at storages through persistent ids), then the list of storage keys, then each storage's bytes
  (an int64 element count, then the raw little-endian elements). The newer zip format (`archive/data.pkl` +
  `archive/data/<key>`) is read as well. A custom Unpickler maps `torch._utils._rebuild_tensor_v2` to a NumPy
  view of the storage bytes and refuses every other global, so the file cannot run code.
* `reference_forward` is a direct NumPy transcription of the PyTorch modules (Conv2d, BatchNorm in eval mode,
  PReLU, the SE module, residual adds, Linear, BatchNorm1d), unfused and in float64: it shares no code with
  the graph builder and is what the ONNX graph is checked against.
* `build_onnx` writes the network with the `onnx` helper API, BatchNorm folded into the preceding convolution
  or linear layer, ending in a Softmax over the 3 classes (class 1 = real face).

The architecture (MiniFASNetV1/V2 and the SE variant) is read off the state dict's names and shapes:
conv1 (3x3/2) -> conv2_dw (3x3 depthwise) -> conv_23 (stride 2) -> conv_3 (residual blocks) -> conv_34 (stride 2)
-> conv_4 -> conv_45 (stride 2) -> conv_5 -> conv_6_sep (1x1) -> conv_6_dw (5x5 depthwise, valid) -> linear ->
bn -> prob. A "Depth_Wise" block is conv (1x1, PReLU) -> conv_dw (3x3 depthwise, PReLU) -> project (1x1, no
activation) [-> se_module], plus the shortcut inside the residual stages. Input: N x 3 x 80 x 80, BGR, 0..255
(Silent-Face's ToTensor does not divide by 255).
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

BN_EPS = 1e-5
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, dtype: Any, numel: int | None) -> None:
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.data: npt.NDArray[Any] | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> npt.NDArray[Any]:
        data = self.storage.data
        if data is None:
            raise ValueError("tensor storage was never read")
        item = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False
        )
        return np.array(view)  # a compact copy


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _Tensor:
    return _Tensor(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


class _Unpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs; anything else is refused (no code runs)."""

    def __init__(self, file: Any, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, kind, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(_DTYPES[kind], int(numel))
        return self.storages[key]


def read_pth(path: str | Path) -> dict[str, npt.NDArray[Any]]:
    """The checkpoint's state dict as name -> NumPy array (a `module.` prefix from DataParallel is dropped)."""
    raw = Path(path).read_bytes()
    storages: dict[str, _Storage] = {}
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            root = pkl[: -len("data.pkl")]
            state = _Unpickler(io.BytesIO(z.read(pkl)), storages).load()
            for key, st in storages.items():
                st.data = np.frombuffer(z.read(f"{root}data/{key}"), dtype=st.dtype.newbyteorder("<"))
    else:
        f = io.BytesIO(raw)
        if pickle.load(f) != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a PyTorch checkpoint")
        pickle.load(f)  # protocol version
        info = pickle.load(f)
        if not info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian checkpoints are not supported")
        state = _Unpickler(f, storages).load()
        for key in pickle.load(f):
            st = storages[key]
            numel = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            if st.numel is not None and numel != st.numel:
                raise ValueError(f"{path}: storage {key} holds {numel} elements, expected {st.numel}")
            st.data = np.frombuffer(f.read(numel * st.dtype.itemsize), dtype=st.dtype.newbyteorder("<"))
            if st.data.size != numel:
                raise ValueError(f"{path}: truncated storage {key}")
    out = {}
    for name, value in state.items():
        if isinstance(value, _Tensor):
            out[re.sub(r"^module\.", "", name)] = value.array()
    return out


# -- the architecture, read off the names ---------------------------------------------------------------------


def blocks(w: dict[str, npt.NDArray[Any]]) -> list[tuple[str, int, bool]]:
    """The Depth_Wise blocks in order: (prefix, stride of the depthwise conv, residual)."""
    out: list[tuple[str, int, bool]] = []
    for stage, stride in (("conv_23", 2), ("conv_3", 1), ("conv_34", 2), ("conv_4", 1), ("conv_45", 2), ("conv_5", 1)):
        if f"{stage}.conv.conv.weight" in w:
            out.append((stage, stride, False))
            continue
        i = 0
        while f"{stage}.model.{i}.conv.conv.weight" in w:
            out.append((f"{stage}.model.{i}", stride, True))
            i += 1
    return out


# -- the NumPy reference (float64, unfused) --------------------------------------------------------------------


def _conv(x: npt.NDArray[np.float64], k: npt.NDArray[Any], stride: int, pad: int, groups: int) -> Any:
    n, _c, h, wd = x.shape
    o, cg, kh, kw = k.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        ks = k[g * og : (g + 1) * og].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ks[:, :, i, j])
    return out


def _bn(x: Any, w: dict[str, Any], p: str) -> Any:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = w[f"{p}.running_mean"].astype(np.float64).reshape(shape)
    var = w[f"{p}.running_var"].astype(np.float64).reshape(shape)
    return (x - mean) / np.sqrt(var + BN_EPS) * w[f"{p}.weight"].reshape(shape) + w[f"{p}.bias"].reshape(shape)


def _prelu(x: Any, a: Any) -> Any:
    return np.where(x >= 0, x, x * a.astype(np.float64).reshape(1, -1, 1, 1))


def _conv_block(x: Any, w: dict[str, Any], p: str, stride: int, pad: int, act: bool) -> Any:
    k = w[f"{p}.conv.weight"]
    groups = x.shape[1] if k.shape[1] == 1 and x.shape[1] > 1 else 1
    y = _bn(_conv(x, k, stride, pad, groups), w, f"{p}.bn")
    return _prelu(y, w[f"{p}.prelu.weight"]) if act else y


def reference_forward(w: dict[str, npt.NDArray[Any]], x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Class probabilities (softmax of the 3 logits) for N x 3 x 80 x 80 BGR 0..255 input, in float64."""
    t = np.asarray(x, dtype=np.float64)
    t = _conv_block(t, w, "conv1", 2, 1, True)
    t = _conv_block(t, w, "conv2_dw", 1, 1, True)
    for p, stride, residual in blocks(w):
        y = _conv_block(t, w, f"{p}.conv", 1, 0, True)
        y = _conv_block(y, w, f"{p}.conv_dw", stride, 1, True)
        y = _conv_block(y, w, f"{p}.project", 1, 0, False)
        if f"{p}.se_module.fc1.weight" in w:
            s = y.mean(axis=(2, 3), keepdims=True)
            s = np.maximum(_bn(_conv(s, w[f"{p}.se_module.fc1.weight"], 1, 0, 1), w, f"{p}.se_module.bn1"), 0)
            s = _bn(_conv(s, w[f"{p}.se_module.fc2.weight"], 1, 0, 1), w, f"{p}.se_module.bn2")
            y = y * (1.0 / (1.0 + np.exp(-s)))
        t = t + y if residual else y
    t = _conv_block(t, w, "conv_6_sep", 1, 0, True)
    t = _conv_block(t, w, "conv_6_dw", 1, 0, False)
    t = t.reshape(t.shape[0], -1)
    t = t @ w["linear.weight"].astype(np.float64).T
    t = _bn(t, w, "bn")
    logits = t @ w["prob.weight"].astype(np.float64).T
    e = np.exp(logits - logits.max(1, keepdims=True))
    return np.asarray(e / e.sum(1, keepdims=True), dtype=np.float64)


# -- the ONNX graph (BatchNorm folded) -------------------------------------------------------------------------


def build_onnx(w: dict[str, npt.NDArray[Any]], out: Path, name: str, opset: int = 17) -> None:
    """Write the network as ONNX: input `input` [N,3,80,80] BGR 0..255, output `probs` [N,3] (softmax)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def fresh(tag: str) -> str:
        counter[0] += 1
        return f"{tag}_{counter[0]}"

    def const(tag: str, arr: npt.NDArray[Any]) -> str:
        n = fresh(tag)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), n))
        return n

    def folded(p: str, k: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        scale = w[f"{p}.weight"].astype(np.float64) / np.sqrt(w[f"{p}.running_var"].astype(np.float64) + BN_EPS)
        bias = w[f"{p}.bias"] - w[f"{p}.running_mean"] * scale
        return k.astype(np.float64) * scale.reshape((-1,) + (1,) * (k.ndim - 1)), bias

    def conv_bn(x: str, p_conv: str, p_bn: str, stride: int, pad: int, groups: int) -> str:
        k, b = folded(p_bn, w[f"{p_conv}.weight"])
        y = fresh("conv")
        kh, kw = k.shape[2:]
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(f"{p_conv}.w", k), const(f"{p_conv}.b", b)],
                [y],
                kernel_shape=[kh, kw],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
                group=groups,
            )
        )
        return y

    def prelu(x: str, a: npt.NDArray[Any]) -> str:
        y = fresh("prelu")
        nodes.append(helper.make_node("PRelu", [x, const("alpha", a.reshape(-1, 1, 1))], [y]))
        return y

    def block(x: str, p: str, stride: int, pad: int, act: bool, channels: int) -> str:
        k = w[f"{p}.conv.weight"]
        groups = channels if k.shape[1] == 1 and channels > 1 else 1
        y = conv_bn(x, f"{p}.conv", f"{p}.bn", stride, pad, groups)
        return prelu(y, w[f"{p}.prelu.weight"]) if act else y

    x = "input"
    x = block(x, "conv1", 2, 1, True, 3)
    x = block(x, "conv2_dw", 1, 1, True, w["conv1.conv.weight"].shape[0])
    for p, stride, residual in blocks(w):
        cin = w[f"{p}.conv.conv.weight"].shape[1]
        mid = w[f"{p}.conv.conv.weight"].shape[0]
        y = block(x, f"{p}.conv", 1, 0, True, cin)
        y = block(y, f"{p}.conv_dw", stride, 1, True, mid)
        y = block(y, f"{p}.project", 1, 0, False, mid)
        if f"{p}.se_module.fc1.weight" in w:
            s = fresh("gap")
            nodes.append(helper.make_node("GlobalAveragePool", [y], [s]))
            s = conv_bn(s, f"{p}.se_module.fc1", f"{p}.se_module.bn1", 1, 0, 1)
            r = fresh("relu")
            nodes.append(helper.make_node("Relu", [s], [r]))
            s = conv_bn(r, f"{p}.se_module.fc2", f"{p}.se_module.bn2", 1, 0, 1)
            g = fresh("sigmoid")
            nodes.append(helper.make_node("Sigmoid", [s], [g]))
            m = fresh("se")
            nodes.append(helper.make_node("Mul", [y, g], [m]))
            y = m
        if residual:
            a = fresh("add")
            nodes.append(helper.make_node("Add", [x, y], [a]))
            y = a
        x = y
    x = block(x, "conv_6_sep", 1, 0, True, w["conv_6_sep.conv.weight"].shape[1])
    x = block(x, "conv_6_dw", 1, 0, False, w["conv_6_dw.conv.weight"].shape[0])
    flat = fresh("flatten")
    nodes.append(helper.make_node("Flatten", [x], [flat], axis=1))
    lin, lin_b = folded("bn", w["linear.weight"])
    h = fresh("linear")
    nodes.append(helper.make_node("Gemm", [flat, const("linear.w", lin), const("linear.b", lin_b)], [h], transB=1))
    logits = fresh("logits")
    nodes.append(helper.make_node("Gemm", [h, const("prob.w", w["prob.weight"])], [logits], transB=1))
    nodes.append(helper.make_node("Softmax", [logits], ["probs"], axis=1))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 80, 80])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="facegate")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    out.write_bytes(model.SerializeToString())
