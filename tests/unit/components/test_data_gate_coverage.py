"""DataGate's coverage rule (checks.coverage_problems): a class with no image, or no slide, in
a split stops the run, naming the class, the split and the counts; warn lets it go on."""
from inception_retrain.components.data_gate import checks
from inception_retrain.components.data_gate.thresholds import GateThresholds


def _index(layout):
    """{split: [index records]} from {split: [(label, group, tiles)]}."""
    return {split: [{"path": f"{label}/{group}_{i}.png", "label": label, "group": group}
                    for label, group, tiles in rows for i in range(tiles)]
            for split, rows in layout.items()}


INDEX = _index({"train": [("a", "a1", 3), ("a", "a2", 3), ("b", "b1", 4), ("b", "b2", 4)],
                "eval": [("a", "a3", 2), ("b", "b3", 2)],
                "test": [("a", "a4", 2)]})


def test_a_class_missing_from_a_split_is_named_with_its_counts_and_what_to_add():
    problems = checks.coverage_problems(checks.split_summary(INDEX, grouped=True))
    assert problems == [
        "class b has 0 test slides (3 slides in all: 2 train, 1 eval, 0 test); a class needs "
        "at least 3 slides to reach every split (train, eval, test): add slides of b "
        "(data.on_split_coverage)"]


def test_every_class_in_every_split_passes():
    index = dict(INDEX, test=INDEX["test"] + _index({"test": [("b", "b4", 1)]})["test"])
    assert checks.coverage_problems(checks.split_summary(index, grouped=True)) == []


def test_without_groups_images_are_counted():
    index = _index({"train": [("a", "x", 5), ("b", "y", 5)], "eval": [("a", "z", 1)],
                    "test": [("a", "w", 1), ("b", "v", 1)]})
    (problem,) = checks.coverage_problems(checks.split_summary(index, grouped=False))
    assert problem.startswith("class b has 0 eval images (6 images in all: 5 train, 0 eval, "
                              "1 test)")


def test_the_policy_decides_between_failure_and_warning():
    counts = {"train": {"a": 6, "b": 8}, "eval": {"a": 2, "b": 2}, "test": {"a": 2}}
    coverage = checks.coverage_problems(checks.split_summary(INDEX, grouped=True))
    failed = checks.evaluate(counts, "train", 0, [], None, GateThresholds(), None, coverage)
    assert coverage[0] in failed.failures
    warned = checks.evaluate(counts, "train", 0, [], None,
                             GateThresholds(on_split_coverage="warn"), None, coverage)
    assert coverage[0] in warned.warnings and coverage[0] not in warned.failures
