"""skl2onnx's converters for ``mnist_accel.MLPClassifier`` (and ``MLPRegressor``), so that
``skl2onnx.to_onnx(est, X)`` converts ours as it converts scikit-learn's: for a classifier the same two outputs
(``label``, and ``probabilities``, a ZipMap of dictionaries unless ``options={'zipmap': False}``) and the
same options (``zipmap``, ``output_class_labels``, ``nocl``); for a regressor ``variable`` ``[N, n_outputs]``.
Float or double as the input is (integer and boolean inputs are cast to float, as ``predict_proba``
converts them too).

The graph computes what ``predict_proba`` and ``predict`` compute: per layer MatMul, Add and the hidden
activation, then the output activation ``out_activation_`` (a softmax over the first ``len(classes_)``
outputs where it is missing, as in models saved by the training command). Labels: the class of the largest
softmax probability; for one logistic output (two classes) ``classes_[p > 0.5]``; for multilabel the 0/1
matrix ``p > 0.5``. Only public fitted attributes are read (``coefs_``, ``intercepts_``, ``classes_``,
``activation``, ``out_activation_``).

``register()`` hands the converters to skl2onnx; ``mnist_accel.onnx_export.hook`` says when that happens.
"""

from __future__ import annotations

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, guess_proto_type
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)
from skl2onnx.proto import onnx_proto

from mnist_accel.estimators.base import ACTIVATIONS
from mnist_accel.onnx_export.graph import ONNX_OPS

ALIASES = {"MLPClassifier": "MnistAccelMLPClassifier", "MLPRegressor": "MnistAccelMLPRegressor"}
OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]}
_HIDDEN = {name: ONNX_OPS[ours] for name, ours in ACTIVATIONS.items()}  # by scikit-learn's names
_OUT = {"softmax": "Softmax", "logistic": "Sigmoid", "exp": "Exp", "identity": "Identity"}
_T = onnx_proto.TensorProto


def _multilabel(est) -> bool:
    return getattr(est, "out_activation_", "softmax") == "logistic" and est.coefs_[-1].shape[1] > 1


def shape_classifier(operator) -> None:
    """skl2onnx's shapes for a classifier, with the label a [N, n_labels] 0/1 matrix for multilabel."""
    calculate_linear_classifier_output_shapes(operator)
    est = operator.raw_operator
    if _multilabel(est):
        operator.outputs[0].type = Int64TensorType([operator.inputs[0].get_first_dimension(), len(est.classes_)])


def shape_regressor(operator) -> None:
    """skl2onnx's shapes for a regressor, [N, n_outputs] (skl2onnx's own say [N, 1])."""
    calculate_linear_regressor_output_shapes(operator)
    operator.outputs[0].type.shape = [operator.inputs[0].get_first_dimension(),
                                      operator.raw_operator.coefs_[-1].shape[1]]


class _Graph:
    """Adds nodes and constants to skl2onnx's container under names unique in its scope."""

    def __init__(self, scope, container, dtype: int) -> None:
        self.scope, self.container, self.dtype = scope, container, dtype

    def node(self, op: str, inputs: list[str], stem: str, output: str | None = None, **attrs) -> str:
        out = output or self.scope.get_unique_variable_name(stem)
        self.container.add_node(op, inputs, out, name=self.scope.get_unique_operator_name(op), **attrs)
        return out

    def constant(self, stem: str, value, proto_type: int | None = None) -> str:
        proto_type = self.dtype if proto_type is None else proto_type
        name = self.scope.get_unique_variable_name(stem)
        value = np.asarray(value)
        data = [str(v).encode() for v in value.ravel()] if proto_type == _T.STRING else value.ravel().tolist()
        self.container.add_initializer(name, proto_type, list(value.shape), data)
        return name


def _scores(scope, operator, container, est) -> tuple[str, _Graph]:
    """The last layer's scores of the input (float, or double for a double input), and the graph."""
    dtype = _T.DOUBLE if isinstance(operator.inputs[0].type, DoubleTensorType) else _T.FLOAT
    np_dtype = np.float64 if dtype == _T.DOUBLE else np.float32
    if est.activation not in _HIDDEN:
        raise ValueError(f"activation={est.activation!r} is not one of {', '.join(_HIDDEN)}")
    g = _Graph(scope, container, dtype)
    h = operator.inputs[0].full_name
    if guess_proto_type(operator.inputs[0].type) != dtype:
        h = g.node("Cast", [h], "cast_input", to=dtype)
    coefs = list(est.coefs_)
    intercepts = list(getattr(est, "intercepts_", None) or [])
    biases = intercepts if len(intercepts) == len(coefs) else [None] * len(coefs)  # a file without biases
    if getattr(est, "out_activation_", "softmax") == "softmax" and hasattr(est, "classes_"):
        n = len(est.classes_)  # predict_proba's softmax covers the first len(classes_) outputs
        coefs[-1], biases[-1] = coefs[-1][:, :n], None if biases[-1] is None else biases[-1][:n]
    for i, (w, b) in enumerate(zip(coefs, biases)):
        h = g.node("MatMul", [h, g.constant("coefficient", np.asarray(w, np_dtype))], "matmul")
        if b is not None:
            h = g.node("Add", [h, g.constant("intercept", np.asarray(b, np_dtype))], "add")
        if i < len(coefs) - 1 and _HIDDEN[est.activation] is not None:
            h = g.node(_HIDDEN[est.activation], [h], "hidden")
    return h, g


def convert_classifier(scope, operator, container) -> None:
    """outputs[0] the label, outputs[1] the probabilities."""
    est = operator.raw_operator
    h, g = _scores(scope, operator, container, est)
    out_activation = getattr(est, "out_activation_", "softmax")
    probabilities, label = operator.outputs[1].full_name, operator.outputs[0].full_name
    if out_activation == "softmax":
        g.node("Softmax", [h], "", probabilities, axis=1)
        index = g.node("ArgMax", [probabilities], "argmax", axis=1, keepdims=0)
    elif out_activation == "logistic":
        p = g.node("Sigmoid", [h], "positive")
        hits = g.node("Greater", [p, g.constant("half", np.full((1, 1), 0.5))], "hits")
        hits = g.node("Cast", [hits], "hits_int", to=_T.INT64)
        if _multilabel(est):  # each label's probability, and the 0/1 label matrix
            g.node("Identity", [p], "", probabilities)
            g.node("Identity", [hits], "", label)
            return
        negative = g.node("Sub", [g.constant("one", np.ones((1, 1))), p], "negative")
        g.node("Concat", [negative, p], "", probabilities, axis=1)
        index = g.node("Reshape", [hits, g.constant("flat", np.array([-1]), _T.INT64)], "index")
    else:
        raise ValueError(f"a classifier's out_activation_ {out_activation!r} cannot be converted")
    classes = np.asarray(est.classes_)
    numeric = classes.dtype.kind in "iufb"  # labels are int64, as skl2onnx's shape calculator declares them
    table = g.constant("classes", classes.astype(np.int64) if numeric else classes,
                       _T.INT64 if numeric else _T.STRING)
    g.node("Gather", [table, index], "", label, axis=0)


def convert_regressor(scope, operator, container) -> None:
    """outputs[0] the predictions, [N, n_outputs]."""
    est = operator.raw_operator
    h, g = _scores(scope, operator, container, est)
    out_activation = getattr(est, "out_activation_", "identity")
    if out_activation not in ("identity", "exp"):
        raise ValueError(f"a regressor's out_activation_ {out_activation!r} cannot be converted")
    g.node(_OUT[out_activation], [h], "", operator.outputs[0].full_name)


def register() -> None:
    """Register the converters with skl2onnx (idempotent): after it, ``skl2onnx.to_onnx`` and
    ``convert_sklearn`` convert our estimators, alone or in a pipeline."""
    import mnist_accel

    update_registered_converter(mnist_accel.MLPClassifier, ALIASES["MLPClassifier"], shape_classifier,
                                convert_classifier, options=OPTIONS)
    try:
        regressor = mnist_accel.MLPRegressor
    except AttributeError:  # a package without the regressor
        return
    update_registered_converter(regressor, ALIASES["MLPRegressor"], shape_regressor, convert_regressor)
