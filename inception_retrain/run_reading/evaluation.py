"""The evaluation sections of a run record, read from TFMA's output and the Evaluators' gate
records: metrics overall and per class, every threshold with its value and result, the failed
ones as sentences, the confusion matrix. TFMA (and with it TensorFlow) is imported only when
there is an evaluation to read; each of TFMA's files is loaded once."""
import posixpath
from typing import Any, Dict, List, Optional, Sequence, Tuple

from inception_retrain.components import artifact_files, features, node_ids
from inception_retrain.components.evaluator import contract as evaluator
from inception_retrain.components.evaluator import evidence_contract
from inception_retrain.pipeline import mlmd
from inception_retrain.run_reading.artifacts import RunArtifacts
from inception_retrain.run_reading.record import EvaluationSection, TestSplitSection

ACCURACY = "sparse_categorical_accuracy"
COUNT = "example_count"


def _has_tfma_output(evaluation_uri: str, prefix: str) -> bool:
    """TFMA wrote <uri>/<prefix>* (metrics, plots, validations); not when the Evaluator failed."""
    return bool(artifact_files.glob(posixpath.join(evaluation_uri, prefix + "*")))


def _metric_values(evaluation_uri: str) -> List[Tuple[Tuple, Any, float]]:
    """(slice key, MetricKey proto, value) of every double-valued metric of every slice, the
    overall one with the key (): TFMA's metrics file, parsed once per read."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.slicer import slicer_lib

    if not _has_tfma_output(evaluation_uri, "metrics"):
        return []
    values = []
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        slice_key = (slicer_lib.deserialize_slice_key(slice_metrics.slice_key)
                     if slice_metrics.slice_key.single_slice_keys else ())
        values += [(slice_key, kv.key, kv.value.double_value.value)
                   for kv in slice_metrics.metric_keys_and_values
                   if kv.value.HasField("double_value")]
    return values


def _overall(values: Sequence[Tuple[Tuple, Any, float]]) -> List[Tuple[Any, float]]:
    """(MetricKey, value) of the overall slice."""
    return [(key, value) for slice_key, key, value in values if not slice_key]


def site_metrics(values: Sequence[Tuple[Tuple, Any, float]]) -> Dict[str, Dict[str, float]]:
    """{site: {example_count, sparse_categorical_accuracy}} of the candidate, from TFMA's site
    slices ({} without them)."""
    sites: Dict[str, Dict[str, float]] = {}
    for slice_key, key, value in values:
        if len(slice_key) != 1 or slice_key[0][0] != features.SITE_KEY:
            continue
        site = slice_key[0][1]
        site = site.decode("utf-8") if isinstance(site, bytes) else str(site)
        if (key.is_diff or key.model_name not in ("", "candidate") or key.sub_key.ByteSize()
                or key.name not in (ACCURACY, COUNT) or not site):
            continue
        sites.setdefault(site, {})[key.name] = value
    return dict(sorted(sites.items()))


def _slice_name(slice_key: Tuple) -> str:
    """`site lab-c` for the slice ((site, b'lab-c'),)."""
    return ", ".join(f"{column} {value.decode() if isinstance(value, bytes) else value}"
                     for column, value in slice_key)


def _worst(threshold, candidates: List[Tuple[Tuple, float]]) -> Optional[Tuple[Tuple, float]]:
    """The (slice, value) farthest on the failing side of a value threshold: the lowest value
    under a lower bound, the highest under an upper bound only."""
    if not candidates:
        return None
    from tensorflow_model_analysis.proto import config_pb2

    upper_only = (isinstance(threshold, config_pb2.GenericValueThreshold)
                  and threshold.HasField("upper_bound") and not threshold.HasField("lower_bound"))
    return (max if upper_only else min)(candidates, key=lambda c: c[1])


def _class_name(class_id: int, class_names: Sequence[str], unknown: str = "{}") -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else unknown.format(class_id)


def metric_tables(values, class_names: Sequence[str]):
    """({name: value}, {class name: {name: value}}); baseline values and changes vs. the
    baseline carry a suffix in their name."""
    overall: Dict[str, float] = {}
    per_class: Dict[str, Dict[str, float]] = {}
    for key, value in values:
        name = key.name + (" (change vs baseline)" if key.is_diff else "")
        if key.model_name and key.model_name != "candidate" and not key.is_diff:
            name += f" [{key.model_name}]"
        if key.sub_key.HasField("class_id"):
            label = _class_name(key.sub_key.class_id.value, class_names)
            per_class.setdefault(label, {})[name] = value
        else:
            overall[name] = value
    return overall, per_class


def _bounds(threshold, digits: str) -> List[str]:
    """A GenericValueThreshold as ">= x" / "<= y"."""
    parts = []
    if threshold.HasField("lower_bound"):
        parts.append(f">= {threshold.lower_bound.value:{digits}}")
    if threshold.HasField("upper_bound"):
        parts.append(f"<= {threshold.upper_bound.value:{digits}}")
    return parts


def threshold_text(threshold) -> str:
    """A MetricThreshold as the console's failure sentences state it."""
    parts = []
    if threshold.HasField("value_threshold"):
        parts += _bounds(threshold.value_threshold, ".4f")
    if threshold.HasField("change_threshold"):
        parts.append(f"change >= {threshold.change_threshold.absolute.value:.4f}")
    return " and ".join(parts) or str(threshold)


def condition(threshold) -> str:
    """A GenericValueThreshold or GenericChangeThreshold as the report's threshold column."""
    from tensorflow_model_analysis.proto import config_pb2

    if isinstance(threshold, config_pb2.GenericValueThreshold):
        return " and ".join(_bounds(threshold, ".4g"))
    parts = []
    higher = threshold.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER
    if threshold.HasField("absolute"):
        parts.append(f"change vs baseline {'>=' if higher else '<='} "
                     f"{threshold.absolute.value:+.4g}")
    if threshold.HasField("relative"):
        parts.append(f"relative change vs baseline {'>=' if higher else '<='} "
                     f"{threshold.relative.value:+.4g}")
    return " and ".join(parts)


def failure_lines(validation, class_names: Sequence[str]) -> List[str]:
    """One sentence per failed threshold of TFMA's validation result."""
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            key = failure.metric_key
            name = key.name
            if key.sub_key.HasField("class_id"):
                name += " [class " + _class_name(key.sub_key.class_id.value, class_names,
                                                 "id {}") + "]"
            failures.append(f"{name}{' change' if key.is_diff else ''} = "
                            f"{failure.metric_value.double_value.value:.4f} fails "
                            f"{threshold_text(failure.metric_threshold)}")
    return failures


def gate_checks(evaluation_uri: str, all_values, validation,
                class_names: Sequence[str]) -> List[Dict[str, Any]]:
    """Every threshold of the evaluation with the measured value and whether it passed.

    Read from the EvalConfig TFMA recorded beside its results (it includes the per-class
    thresholds the GatedEvaluator adds) and TFMA's validation result; a change threshold has
    no value when there was no baseline, and then did not apply.
    """
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    if eval_config is None:
        return []
    return checks_of(eval_config, _overall(all_values), validation, class_names,
                     [v for v in all_values if v[0]])


def checks_of(eval_config, values, validation, class_names: Sequence[str],
              sliced_values: Sequence[Tuple[Tuple, Any, float]] = ()) -> List[Dict[str, Any]]:
    """gate_checks from the EvalConfig, the overall values, the per-slice values and TFMA's
    validation result. A threshold set on slices (evaluation.min_site_accuracy: every site)
    shows the worst of those slices' values, and names that slice, not the overall value."""
    from tensorflow_model_analysis.metrics import metric_specs, metric_types
    from tensorflow_model_analysis.slicer import slicer_lib

    by_key = {metric_types.MetricKey.from_proto(key): value for key, value in values}
    failed = {metric_types.MetricKey.from_proto(failure.metric_key)
              for per_slice in validation.metric_validations_per_slice
              for failure in per_slice.failures}
    by_slice: Dict[Any, List[Tuple[Tuple, float]]] = {}
    for slice_key, key, value in sliced_values:
        by_slice.setdefault(metric_types.MetricKey.from_proto(key), []).append((slice_key, value))
    checks = []
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config)
    for key, slices_and_thresholds in thresholds.items():
        if key.model_name not in ("", "candidate"):
            continue
        value = by_key.get(key)
        label = (None if key.sub_key is None or key.sub_key.class_id is None else
                 _class_name(key.sub_key.class_id, class_names, "class id {}"))
        for spec, threshold in slices_and_thresholds:
            check = {"metric": key.name, "class": label,
                     "kind": "change" if key.is_diff else "value",
                     "condition": condition(threshold), "value": value,
                     "passed": None if value is None else key not in failed}
            if spec is not None and not isinstance(spec, slicer_lib.SingleSliceSpec):
                spec = slicer_lib.SingleSliceSpec(spec=spec)  # a SlicingSpec proto
            if spec is not None and not spec.is_overall():
                worst = _worst(threshold, [(s, v) for s, v in by_slice.get(key, [])
                                           if spec.is_slice_applicable(s)])
                check["value"] = worst[1] if worst else None
                check["slice"] = _slice_name(worst[0]) if worst else None
                sliced = spec.to_proto()
                check["condition"] += " on every " + " and ".join(
                    sorted(set(sliced.feature_keys) | set(sliced.feature_values)))
                check["passed"] = None if worst is None else key not in failed
            checks.append(check)
    return sorted(checks, key=lambda c: (c["class"] is not None, c["metric"], c["class"] or "",
                                         c["kind"]))


def top_k(evaluation_uri: str) -> Optional[int]:
    """The k of SparseTopKCategoricalAccuracy in the EvalConfig TFMA recorded; None without."""
    import json

    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    for spec in eval_config.metrics_specs if eval_config is not None else ():
        for metric in spec.metrics:
            if metric.class_name == "SparseTopKCategoricalAccuracy" and metric.config:
                text = metric.config.strip()
                try:
                    return int(json.loads(text if text.startswith("{") else "{" + text + "}")
                               .get("k"))
                except (ValueError, TypeError):
                    return None
    return None


def confusion_matrix(evaluation_uri: str, class_names: Sequence[str],
                     model_names: Sequence[str] = ("", "candidate")) -> Optional[Dict]:
    """TFMA's MultiClassConfusionMatrixPlot of the candidate (or of model_names, e.g.
    ("baseline",)) on the eval split, as counts.

    rows: actual class, columns: predicted class (argmax); None when the evaluation has no such
    plot (an EvalConfig without it, or no baseline)."""
    import tensorflow_model_analysis as tfma

    if not _has_tfma_output(evaluation_uri, "plots"):
        return None
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if (not kv.value.HasField("multi_class_confusion_matrix_at_thresholds")
                    or kv.key.model_name not in model_names):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            if matrices:
                return _matrix_counts(matrices[0].entries, class_names)
    return None


def _matrix_counts(entries, class_names: Sequence[str]) -> Dict[str, Any]:
    size = max([len(class_names)] + [max(e.actual_class_id, e.predicted_class_id) + 1
                                      for e in entries])
    names = list(class_names) + [f"class id {i}" for i in range(len(class_names), size)]
    counts = [[0] * size for _ in range(size)]
    unpredicted = [0] * size
    for entry in entries:
        count = int(round(entry.num_weighted_examples))
        if entry.predicted_class_id < 0:
            unpredicted[entry.actual_class_id] += count
        else:
            counts[entry.actual_class_id][entry.predicted_class_id] += count
    return {"classes": names, "counts": counts, "no_prediction": unpredicted}


def read_evaluation(run: RunArtifacts) -> Optional[EvaluationSection]:
    """The Evaluator's section; None when it did not run or wrote no evaluation."""
    artifact = run.output(node_ids.EVALUATOR, "evaluation")
    if artifact is None or not _has_tfma_output(artifact.uri, "metrics"):
        return None
    import tensorflow_model_analysis as tfma

    uri = artifact.uri
    gate = evaluator.read_gate_record(uri) or {}
    class_names = gate.get("class_names", [])
    all_values = _metric_values(uri)
    metrics, per_class = metric_tables(_overall(all_values), class_names)
    validation = (tfma.load_validation_result(uri) if _has_tfma_output(uri, "validations")
                  else None)
    blessing = run.output(node_ids.EVALUATOR, "blessing")
    evidence = evidence_contract.read_evidence(uri)
    failures = failure_lines(validation, class_names) if validation is not None else []
    # the Evaluator's own rules (evidence, paired no-regression, group floor); TFMA's
    # thresholds are read from its validation result just above
    failures += [r for r in (evidence or {}).get("reasons") or [] if not r.startswith("TFMA")]
    model = run.input(node_ids.EVALUATOR, "model")
    examples = run.input(node_ids.EVALUATOR, "examples")
    return EvaluationSection(
        metrics=metrics, per_class=per_class, baseline=gate.get("baseline"),
        blessed=bool(blessing is not None and mlmd.property_value(
            blessing.custom_properties, evaluator.BLESSED_PROPERTY)),
        failures=failures,
        validation_ok=validation.validation_ok if validation is not None else None,
        class_names=class_names,
        checks=(gate_checks(uri, all_values, validation, class_names)
                if validation is not None else []),
        confusion_matrix=confusion_matrix(uri, class_names),
        top_k=top_k(uri),
        baseline_confusion_matrix=(confusion_matrix(uri, class_names, ("baseline",))
                                   if any(" [baseline]" in name for name in metrics) else None),
        model_uri=model.uri if model is not None else None,
        examples_uri=examples.uri if examples is not None else None, uri=uri,
        evidence=evidence, sites=site_metrics(all_values),
        min_site_accuracy=gate.get("min_site_accuracy") or 0.0)


def read_test_split(run: RunArtifacts) -> Optional[TestSplitSection]:
    """The held-out evaluation's section; None when the TestSplitEvaluator did not run."""
    if node_ids.TEST_SPLIT_EVALUATOR not in run.ran:
        return None
    artifact = run.output(node_ids.TEST_SPLIT_EVALUATOR, "evaluation")
    record = (evaluator.read_gate_record(artifact.uri) if artifact is not None else None) or {}
    if record.get("skipped") or not record:
        return TestSplitSection(skipped=record.get("skipped")
                                or "no record (the evaluation did not run)")
    metrics, per_class = metric_tables(_overall(_metric_values(artifact.uri)),
                                       record.get("class_names", []))
    return TestSplitSection(skipped="", splits=record.get("splits"), metrics=metrics,
                            per_class=per_class,
                            evidence=evidence_contract.read_evidence(artifact.uri))
