"""Per-class precision and recall of the top-1 decision, as TFMA metrics.

A client sees the class with the highest score (predicted_class). TFMA's own Precision and
Recall, binarized by class id, instead threshold that class's score at 0.5, which for a
multi-class model is another question; and in TFMA 0.47 adding top_k=1 to them breaks both the
values (every example counts as positive) and the thresholds (looked up under a key without
top_k). These metrics count, for each class id of MetricsSpec.binarize.class_ids, the examples
whose argmax(scores) and label agree or not, under the plain class-id key, so thresholds and
baseline comparisons work as for any TFMA metric.
"""
from typing import Dict, Iterable, List, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

TOP1_PRECISION = "top1_precision"
TOP1_RECALL = "top1_recall"
MODULE = __name__


class TopOnePrecision(metric_types.Metric):
    """Of the examples whose top-scored class is c, the fraction labelled c."""

    def __init__(self, name: str = TOP1_PRECISION):
        super().__init__(metric_util.merge_per_key_computations(_precision), name=name)


class TopOneRecall(metric_types.Metric):
    """Of the examples labelled c, the fraction whose top-scored class is c."""

    def __init__(self, name: str = TOP1_RECALL):
        super().__init__(metric_util.merge_per_key_computations(_recall), name=name)


def _per_class(kind: str):
    """TFMA's per-key computations function for one kind ("precision" or "recall")."""
    def computations(name: str, eval_config: Optional[config_pb2.EvalConfig] = None,
                     model_name: str = "", output_name: str = "",
                     sub_key: Optional[metric_types.SubKey] = None,
                     aggregation_type: Optional[metric_types.AggregationType] = None,
                     example_weighted: bool = False) -> metric_types.MetricComputations:
        return _computations(kind, name, eval_config, model_name, output_name, sub_key,
                             aggregation_type, example_weighted)
    return computations


_precision = _per_class("precision")
_recall = _per_class("recall")


def _computations(kind, name, eval_config, model_name, output_name, sub_key, aggregation_type,
                  example_weighted) -> metric_types.MetricComputations:
    if sub_key is None or sub_key.class_id is None or aggregation_type is not None:
        raise ValueError(f"{name} is computed per class: put it in a MetricsSpec with "
                         "binarize.class_ids (and no aggregation)")
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_TopOneCombiner(key, kind, eval_config, example_weighted))]


class _TopOneCombiner(beam.CombineFn):
    """Accumulates [true positives, false positives, false negatives] of one class id."""

    def __init__(self, key: metric_types.MetricKey, kind: str,
                 eval_config: Optional[config_pb2.EvalConfig], example_weighted: bool):
        self._key = key
        self._kind = kind
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> List[float]:
        return [0.0, 0.0, 0.0]

    def add_input(self, accumulator: List[float],
                  element: metric_types.StandardMetricInputs) -> List[float]:
        class_id = self._key.sub_key.class_id
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, example_weighted=self._example_weighted,
                flatten=False, require_single_example_weight=True):
            label = np.asarray(label).reshape(-1)
            truth = int(label[0]) if label.size == 1 else int(np.argmax(label))
            predicted = int(np.argmax(np.asarray(prediction).reshape(-1)))
            weight = float(metric_util.safe_to_scalar(weight))
            if predicted == class_id:
                accumulator[0 if truth == class_id else 1] += weight
            elif truth == class_id:
                accumulator[2] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[List[float]]) -> List[float]:
        return [float(sum(values)) for values in zip(*accumulators)]

    def extract_output(self, accumulator: List[float]) -> Dict[metric_types.MetricKey, float]:
        true_pos, false_pos, false_neg = accumulator
        total = true_pos + (false_pos if self._kind == "precision" else false_neg)
        return {self._key: true_pos / total if total > 0 else float("nan")}
