"""A model's parameters as an ONNX graph: MatMul, Add (where the model has biases) and the hidden activation
per layer, then the output activation. Pure: arrays and metadata in, an ``onnx.ModelProto`` out; no file is
read here.

The graph computes exactly what this package predicts from the same parameters. For the training command's
models (and every softmax classifier) that is ``mnist_accel.model.probabilities``, as ``predict`` and
``MLPClassifier.predict_proba`` compute it: the softmax over the first ``len(classes)`` outputs, whatever
loss trained the model (the squared-error losses 'mse' and 'softmax-mse' included: their probabilities are
the softmax of the outputs too). The estimators' other output activations (``out_activation``) follow
``mnist_accel.losses.link``: 'logistic' gives each label's probability (multilabel), or for one output the
two columns ``[1 - p, p]`` (binary, as ``predict_proba``); 'identity' and 'exp' give a regressor's
predictions.

It takes one input, ``image``: float32 ``[batch, n_features]`` (the batch dimension is dynamic), for the
training command's models 784 pixels of a 28x28 picture in row-major order scaled to [0, 1] (pixel / 255,
what ``predict_proba`` and ``predict`` are given). It returns ``probabilities`` (``predictions`` for a
regressor): float32 ``[batch, n]``, columns in the order of the ``classes`` metadata.

Everything is float32: a model trained with ``--dtype float64`` is rounded to float32 on export, as ONNX
runtimes run float32 MLPs everywhere. ``OPSET`` is the ONNX opset: the ops used have kept their meaning
since opset 14, and 17 is run by every ONNX Runtime from 1.13 on; the IR version is the lowest that opset
allows, so older runtimes load the file too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mnist_accel.model import layers
from mnist_accel.version import __version__

OPSET = 17
INPUT = "image"
OUTPUT = "probabilities"
PREDICTIONS = "predictions"  # a regressor's output
OUT_ACTIVATIONS = ("softmax", "logistic", "identity", "exp")  # as the estimators' out_activation_
ONNX_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": None}  # None: no node


def check_layers(params: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The ``(W, b)`` pairs of ``params`` (``b`` None without biases); ValueError unless they chain."""
    pairs = list(layers(params)) if len(params) else []
    if not pairs:
        raise ValueError("the model has no layer")
    for i, (w, b) in enumerate(pairs):
        if w.ndim != 2 or (b is not None and b.shape != (w.shape[1],)):
            raise ValueError(f"layer {i + 1}: weight {w.shape} and bias {None if b is None else b.shape} "
                             "do not fit together")
        if i and pairs[i - 1][0].shape[1] != w.shape[0]:
            raise ValueError(f"layers {i} and {i + 1}: shapes {pairs[i - 1][0].shape} and {w.shape} do not chain")
    if len({b is None for _, b in pairs}) > 1:
        raise ValueError("some layers have biases and others not")
    return pairs


def _float32(name: str, value: np.ndarray) -> TensorProto:
    with np.errstate(over="ignore"):  # an overflow is reported below, as one line naming the array
        array = np.asarray(value, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds values that are not finite in float32 (NaN, or beyond float32's range)")
    return numpy_helper.from_array(array, name)


def _prop(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=lambda v: v.tolist())  # NumPy values too


def _classes(n_out: int, out_activation: str, classes: Sequence[Any] | None) -> list | None:
    """The classes the outputs stand for (None for a regressor), checked against the output count."""
    if out_activation in ("identity", "exp"):
        if classes is not None:
            raise ValueError(f"a regressor's output ({out_activation!r}) has no classes")
        return None
    classes = list(range(n_out)) if classes is None else list(classes)
    if out_activation == "logistic":
        binary = n_out == 1 and len(classes) == 2
        if not binary and len(classes) != n_out:
            raise ValueError(f"{len(classes)} labels for {n_out} logistic outputs")
    elif not 1 <= len(classes) <= n_out:
        raise ValueError(f"{len(classes)} classes for a model with {n_out} outputs")
    return classes


def _output_nodes(h: str, n_out: int, out_activation: str, classes: list | None) -> tuple[list, list, str, int]:
    """The nodes (and initializers) from the last layer's scores ``h`` to the output: its name and width."""
    if out_activation == "softmax":
        return [helper.make_node("Softmax", [h], [OUTPUT], name="Softmax", axis=-1)], [], OUTPUT, len(classes)
    if out_activation == "exp":
        return [helper.make_node("Exp", [h], [PREDICTIONS], name="Exp")], [], PREDICTIONS, n_out
    if out_activation == "identity":
        return [helper.make_node("Identity", [h], [PREDICTIONS], name="Identity")], [], PREDICTIONS, n_out
    if len(classes) == n_out:  # one logistic output per label
        return [helper.make_node("Sigmoid", [h], [OUTPUT], name="Sigmoid")], [], OUTPUT, n_out
    nodes = [helper.make_node("Sigmoid", [h], ["positive"], name="Sigmoid"),  # binary: [1 - p, p]
             helper.make_node("Sub", ["one", "positive"], ["negative"], name="Sub"),
             helper.make_node("Concat", ["negative", "positive"], [OUTPUT], name="Concat", axis=1)]
    return nodes, [numpy_helper.from_array(np.ones((1, 1), np.float32), "one")], OUTPUT, 2


def build_model(params: Sequence[np.ndarray], activation: str, classes: Sequence[Any] | None = None,
                metadata: Mapping[str, Any] | None = None, input_doc: str | None = None,
                out_activation: str = "softmax", name: str = "mnist_accel_mlp") -> onnx.ModelProto:
    """The ONNX model of ``params`` (``[W1, b1, W2, b2, ...]`` or ``[W1, W2, ...]``, any depth) with the
    hidden ``activation`` (one of ``ONNX_OPS``: every one of ``mnist_accel.model.ACTIVATIONS``) and
    ``out_activation`` (one of ``OUT_ACTIVATIONS``; the training command's models are 'softmax').

    ``classes`` (default: one per output) names the probabilities' columns; where a softmax's last layer has
    more outputs than classes (a one-class classifier trains two), the extra outputs are dropped, as
    ``predict_proba`` ignores them. ``metadata`` goes to the model's ``metadata_props`` (strings as they are,
    anything else as JSON), with ``classes``, ``activation``, ``out_activation``, ``input`` and ``producer``
    added; ``input_doc`` describes the input. ValueError names what is wrong with the arguments.
    """
    if activation not in ONNX_OPS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ONNX_OPS)}")
    if out_activation not in OUT_ACTIVATIONS:
        raise ValueError(f"unknown output activation {out_activation!r}; choose one of {', '.join(OUT_ACTIVATIONS)}")
    pairs = check_layers(params)
    n_out = pairs[-1][0].shape[1]
    classes = _classes(n_out, out_activation, classes)
    if out_activation == "softmax" and len(classes) < n_out:  # the softmax covers the first len(classes) only
        w, b = pairs[-1]
        pairs[-1] = (w[:, :len(classes)], None if b is None else b[:len(classes)])
    n_in = pairs[0][0].shape[0]
    input_doc = input_doc or f"float32 [batch, {n_in}]: the features predict_proba takes"

    nodes, inits, h = [], [], INPUT
    for i, (w, b) in enumerate(pairs, start=1):
        inits.append(_float32(f"W{i}", w))
        nodes.append(helper.make_node("MatMul", [h, f"W{i}"], [f"matmul{i}"], name=f"MatMul{i}"))
        h = f"matmul{i}"
        if b is not None:
            inits.append(_float32(f"b{i}", b))
            nodes.append(helper.make_node("Add", [h, f"b{i}"], [f"add{i}"], name=f"Add{i}"))
            h = f"add{i}"
        op = ONNX_OPS[activation]
        if i < len(pairs) and op is not None:
            nodes.append(helper.make_node(op, [h], [f"hidden{i}"], name=f"{op}{i}"))
            h = f"hidden{i}"
    out_nodes, out_inits, out_name, width = _output_nodes(h, pairs[-1][0].shape[1], out_activation, classes)
    what = "class probabilities, columns in the order of 'classes'" if classes is not None else "predictions"

    graph = helper.make_graph(
        nodes + out_nodes, name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_in], doc_string=input_doc)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", width], doc_string=what)],
        initializer=inits + out_inits)
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="mnist-accel",
                              producer_version=__version__, doc_string="An MLP trained by mnist-accel.")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    props = {**(metadata or {}), "activation": activation, "out_activation": out_activation, "input": input_doc,
             "producer": f"mnist-accel {__version__}"}
    if classes is not None:
        props["classes"] = classes
    helper.set_model_props(model, {k: _prop(v) for k, v in props.items()})
    onnx.checker.check_model(model, full_check=True)
    return model
