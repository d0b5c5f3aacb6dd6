"""The DataGate's leakage checks and split summary on ImageExampleGen's index: a group in two
splits, identical files across splits and under two labels, each named; policies route them."""
from inception_retrain.components.data_gate import checks, report


def record(path, label, group, sha, site=""):
    return {"path": path, "label": label, "group": group, "sha256": sha, "site": site}


INDEX = {
    "train": [record("train/a/S01_0_0.png", "a", "S01", "1" * 64, "lab1"),
              record("train/a/S01_1_0.png", "a", "S01", "2" * 64, "lab1"),
              record("train/a/S02_0_0.png", "a", "S02", "3" * 64, "lab2"),
              record("train/a/S02_1_0.png", "a", "S02", "3" * 64, "lab2"),   # copy, same class
              record("train/b/S03_0_0.png", "b", "S03", "4" * 64, "lab2")],
    "test": [record("test/a/S01_2_0.png", "a", "S01", "5" * 64, "lab1"),     # S01 leaks
             record("test/b/S04_0_0.png", "b", "S04", "1" * 64, "lab1")],     # same bytes, b
}


def test_leakage_names_groups_and_files():
    leaks = checks.leakage(INDEX)
    groups, duplicates, conflicts = checks.leakage_problems(leaks)
    assert len(groups) == 1 and "'S01'" in groups[0] and "test: 1 image(s)" in groups[0]
    assert "train/a/S01_0_0.png" in groups[0]
    assert len(duplicates) == 1 and "test: test/b/S04_0_0.png" in duplicates[0]
    assert len(conflicts) == 1
    assert "train/a/S01_0_0.png (a)" in conflicts[0] and "test/b/S04_0_0.png (b)" in conflicts[0]
    assert leaks["duplicates_within_class"] == {"train": {"a": 1}}


def test_policies_fail_or_warn_each_leak():
    counts = {"train": {"a": 4, "b": 1}, "test": {"a": 1, "b": 1}}
    leaks = checks.leakage(INDEX)
    strict = checks.evaluate(counts, "train", 0, [], None, checks.GateThresholds(
        min_examples_per_class=1, max_class_ratio=0, on_duplicates="fail"), leaks)
    assert len(strict.failures) == 3 and not strict.warnings
    lenient = checks.evaluate(counts, "train", 0, [], None, checks.GateThresholds(
        min_examples_per_class=1, max_class_ratio=0, on_group_leakage="warn",
        on_label_conflict="warn"), leaks)
    assert not lenient.failures and len(lenient.warnings) == 3


def test_split_summary_counts_groups_sites_and_balance():
    summary = checks.split_summary(INDEX, grouped=True)
    train = summary["splits"]["train"]
    assert (train["images"], train["groups"]) == (5, 3)
    assert train["images_per_group"] == {"min": 1, "median": 2, "mean": 1.67, "max": 2}
    assert train["sites"] == {"lab1": 2, "lab2": 3}
    # whole: a 5/7, b 2/7; train: a 4/5 -> distance 0.8 - 0.714 = 0.086
    assert abs(train["class_balance_distance"] - (4 / 5 - 5 / 7)) < 1e-3
    assert summary["groups"] == 4 and summary["sites"] == {"lab1": 2, "lab2": 2}
    text = "\n".join(report.split_section(summary, checks.leakage_summary(checks.leakage(INDEX))))
    assert "Split by group: 4 groups" in text and "`S01` (test, train)" in text
    per_image = "\n".join(report.split_section(checks.split_summary(INDEX, False), None))
    assert "Split per image" in per_image
