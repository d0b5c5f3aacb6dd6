"""The gate's configuration: config keys, the EvalConfig, and the per-class completion."""
import pytest

from inception_retrain.pipeline import config as config_lib


@pytest.mark.parametrize("overrides, message", [
    ({"evaluation": {"per_class_recall_floor": "1.5"}},
     r"evaluation.per_class_recall_floor must be in \[0, 1\], got 1.5"),
    ({"evaluation": {"top_k": "0"}}, "evaluation.top_k must be at least 1, got 0"),
    ({"evaluation": {"baseline": "latest"}},
     "evaluation.baseline must be one of served, latest_blessed, none, got 'latest'"),
    ({"keep_versions": "0"}, "keep_versions must be at least 1, got 0"),
    ({"evaluation": {"regression_rule": "bounds"}},
     r"evaluation.regression_rule must be one of point, bound, got 'bounds' \(did you mean "
     r"bound\?\)"),
    ({"evaluation": {"group_aggregation": "median"}},
     "evaluation.group_aggregation must be one of mean, majority, got 'median'"),
    ({"evaluation": {"significance_level": "0"}},
     r"evaluation.significance_level must be in \(0, 1\), got 0.0"),
    ({"evaluation": {"min_eval_groups_per_class": "-1"}},
     "evaluation.min_eval_groups_per_class must be at least 0, got -1"),
    ({"evaluation": {"min_group_accuracy": "2"}},
     r"evaluation.min_group_accuracy must be in \[0, 1\], got 2.0"),
])
def test_bad_gate_settings_name_the_key(overrides, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load(overrides=overrides)


def test_defaults_gate_against_the_served_model():
    config = config_lib.load(overrides={"evaluation": {"per_class_recall_floor": "0.25"}})
    assert config.evaluation.baseline == "served"
    assert config.evaluation.per_class_recall_floor == 0.25
    assert config.keep_versions == 5


def _thresholds(eval_config):
    import tensorflow_model_analysis as tfma

    found = tfma.metrics.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config=eval_config)
    return {(key.name, key.sub_key.class_id if key.sub_key else None, key.is_diff):
            [threshold for _, threshold in values] for key, values in found.items()}


def test_eval_config_gates_accuracy_by_its_floor_only():
    """No accuracy change threshold in TFMA: the GatedEvaluator's paired rule is the one
    no-regression statistic (components.evaluator.evidence_rules)."""
    from inception_retrain.pipeline.pipeline import create_eval_config

    thresholds = _thresholds(create_eval_config(0.7, top_k=3))
    (floor,) = thresholds[("sparse_categorical_accuracy", None, False)]
    assert floor.lower_bound.value == 0.7
    assert set(thresholds) == {("sparse_categorical_accuracy", None, False)}
    names = {m.class_name: m.config for spec in create_eval_config(0.7, 3).metrics_specs
             for m in spec.metrics}
    assert names["SparseTopKCategoricalAccuracy"] == '"k": 3'
    assert "MultiClassConfusionMatrixPlot" in names


def test_record_only_eval_config_has_no_thresholds():
    from inception_retrain.pipeline.pipeline import create_eval_config

    assert _thresholds(create_eval_config(None)) == {}


@pytest.mark.parametrize("floor, gated", [(0.0, False), (0.4, True)])
def test_per_class_metrics_cover_every_class(floor, gated):
    from inception_retrain.components.evaluator.evaluator import with_per_class_metrics
    from inception_retrain.pipeline.pipeline import create_eval_config

    config = with_per_class_metrics(create_eval_config(0.5), num_classes=4,
                                    recall_floor=floor)
    per_class = config.metrics_specs[-1]
    assert list(per_class.binarize.class_ids.values) == [0, 1, 2, 3]
    assert [m.class_name for m in per_class.metrics] == [
        "TopOnePrecision", "TopOneRecall", "Calibration", "CalibrationPlot"]
    recall_floors = {class_id: values[0].lower_bound.value
                     for (name, class_id, _), values in _thresholds(config).items()
                     if name == "top1_recall"}
    assert recall_floors == ({i: floor for i in range(4)} if gated else {})
