"""Issue 16, item 4: the per-class no-regression rule (evaluation.max_class_recall_drop), a
change threshold on each class's TopOneRecall; off (1) by default."""
from inception_retrain.components.evaluator import evaluator
from inception_retrain.pipeline import config as config_lib


def _recall(spec):
    return next(m for m in spec.metrics if m.class_name == "TopOneRecall")


def test_off_by_default_no_change_threshold():
    assert config_lib.EvaluationConfig().max_class_recall_drop == 1.0
    assert not _recall(evaluator.per_class_metrics_spec(3)).HasField("threshold")


def test_a_drop_below_one_is_a_change_threshold_per_class_beside_the_floor():
    import tensorflow_model_analysis as tfma

    spec = evaluator.per_class_metrics_spec(4, recall_floor=0.2, max_recall_drop=0.1)
    threshold = _recall(spec).threshold
    assert threshold.change_threshold.absolute.value == -0.1
    assert threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    assert threshold.value_threshold.lower_bound.value == 0.2
    assert list(spec.binarize.class_ids.values) == [0, 1, 2, 3]
    config = evaluator.with_site_slices(evaluator.with_per_class_metrics(
        tfma.EvalConfig(), 4, 0.0, 0.05))
    keys = tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs)
    diffs = [k for k in keys if k.name == "top1_recall" and k.is_diff]
    assert sorted(k.sub_key.class_id for k in diffs) == [0, 1, 2, 3]


def test_the_dag_carries_the_setting_to_the_evaluator():
    from inception_retrain.pipeline.pipeline import create_pipeline_from_config

    config = config_lib.load(overrides={"evaluation": {"max_class_recall_drop": "0.1"},
                                        "data": {"root": "/data"}})
    dag = create_pipeline_from_config(config, "/schema.pbtxt", "/data")
    node = next(c for c in dag.components if c.id == "Evaluator")
    assert node.exec_properties[evaluator.MAX_CLASS_RECALL_DROP_KEY] == 0.1
