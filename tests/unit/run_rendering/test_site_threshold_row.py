"""The blessing table's row for evaluation.min_site_accuracy shows the worst site's value and
names the site, not the overall value (which passes the floor while one site fails it)."""
from inception_retrain.components import features
from inception_retrain.components.evaluator import evaluator
from inception_retrain.run_reading import evaluation
from inception_retrain.run_reading.record import EvaluationSection
from inception_retrain.run_rendering import page

SITES = {"lab-a": 0.95, "lab-b": 0.85, "lab-c": 0.6}


def _checks():
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.proto import validation_result_pb2

    config = evaluator.with_site_slices(tfma.EvalConfig(), min_site_accuracy=0.8)
    key = tfma.metrics.MetricKey(name=evaluator.SITE_ACCURACY)
    sliced = [(((features.SITE_KEY, site.encode()),), key.to_proto(), acc)
              for site, acc in SITES.items()]
    validation = validation_result_pb2.ValidationResult(validation_ok=True)
    for slice_key, _, acc in [((), None, 0.9)] + sliced:
        result = metrics_validator.validate_metrics((slice_key, {key: acc}), config)
        validation.metric_validations_per_slice.extend(result.metric_validations_per_slice)
        validation.validation_ok &= result.validation_ok
    assert not validation.validation_ok
    return evaluation.checks_of(config, [(key.to_proto(), 0.9)], validation, ["x", "y"], sliced)


def test_site_floor_row_has_the_worst_site():
    [check] = [c for c in _checks() if c["metric"] == evaluator.SITE_ACCURACY]
    assert check["value"] == 0.6 and check["slice"] == f"{features.SITE_KEY} lab-c"
    assert check["passed"] is False
    assert check["condition"].startswith(">= 0.8") and "every" in check["condition"]


def test_blessing_table_shows_it():
    section = EvaluationSection(metrics={}, per_class={}, baseline=None, blessed=False,
                                failures=[], validation_ok=False, checks=_checks())
    html = page._blessing_html(section)
    assert "0.6000 (worst: " in html and "lab-c" in html
    assert "0.9000" not in html
