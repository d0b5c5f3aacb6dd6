"""evaluation.min_site_accuracy switched on: the threshold the Evaluator builds
(with_site_slices) fails the blessing on the worst site alone, through TFMA's own validator,
while the overall slice and the better sites pass; off (0) no site can fail."""
from inception_retrain.components import features
from inception_retrain.components.evaluator import evaluator


def _validate(config, accuracy_by_site, overall=0.9):
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.evaluators import metrics_validator

    key = tfma.metrics.MetricKey(name=evaluator.SITE_ACCURACY)
    failed = {}
    for slice_key, value in [((), overall)] + [
            (((features.SITE_KEY, site),), acc) for site, acc in accuracy_by_site.items()]:
        result = metrics_validator.validate_metrics((slice_key, {key: value}), config)
        failed[slice_key[0][1] if slice_key else "overall"] = not result.validation_ok
    return failed


def test_min_site_accuracy_fails_on_the_worst_site_only():
    import tensorflow_model_analysis as tfma

    config = evaluator.with_site_slices(tfma.EvalConfig(), min_site_accuracy=0.8)
    sites = {"lab-a": 0.95, "lab-b": 0.85, "lab-c": 0.6}
    assert _validate(config, sites) == {"overall": False, "lab-a": False, "lab-b": False,
                                        "lab-c": True}


def test_off_no_site_floor():
    import tensorflow_model_analysis as tfma

    config = evaluator.with_site_slices(tfma.EvalConfig())
    assert not any(m.config and evaluator.SITE_ACCURACY in m.config
                   for s in config.metrics_specs for m in s.metrics)
