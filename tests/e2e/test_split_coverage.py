"""Every class in every split, or a refusal (issue 24), through the real ImageExampleGen and
DataGate: tiles of 3 x 10 slides reach train, eval and test per class, whole slides per split,
recorded in the split ledger; a class with two slides stops the DataGate, naming it."""
import json

import pytest
from conftest import run_data_gate_pipeline
from test_slide_leakage import png

GROUP = r"^(?P<group>[^_]+)_"


def slide_tiles(root, slides_per_class, tiles=3):
    """<class>/<slide>_<x>_<y>.png: tiles of distinct pixels."""
    seed = 0
    for label, count in slides_per_class.items():
        for n in range(count):
            for i in range(tiles):
                seed += 1
                png(root / label / f"{label}{n:02d}_{i}_0.png", seed)
    return root


def gate(tmp_path, data, name, **rules):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.ingest import IngestOptions

    example_gen = ImageExampleGen(str(data), options=IngestOptions(group_pattern=GROUP),
                                  split_ledger=str(tmp_path / name / "split_ledger.json"))
    return run_data_gate_pipeline(example_gen, tmp_path / name, name, min_examples_per_class=1,
                                  **rules)


def test_thirty_slides_give_every_class_eval_and_test_slides_kept_by_the_ledger(tmp_path):
    from inception_retrain.components.image_example_gen import contract
    from inception_retrain.pipeline import mlmd

    data = slide_tiles(tmp_path / "data", {"a": 10, "b": 10, "c": 10})
    metadata_path = gate(tmp_path, data, "thirty")
    store = mlmd.open_store(metadata_path)
    nodes = mlmd.latest_run_executions(store, "thirty")
    examples = mlmd.output_artifacts(store, nodes["ImageExampleGen"])["examples"][0]
    index = contract.read_index(examples.uri)
    slides = {split: {c: {r["group"] for r in records if r["label"] == c} for c in "abc"}
              for split, records in index.items()}
    assert {split: {c: len(g) for c, g in per.items()} for split, per in slides.items()} == {
        "train": {"a": 7, "b": 7, "c": 7}, "eval": {"a": 2, "b": 2, "c": 2},
        "test": {"a": 1, "b": 1, "c": 1}}
    ledger = contract.read_ledger(str(tmp_path / "thirty" / "split_ledger.json"))
    assert {g: e["split"] for g, e in ledger.items()} == {
        g: split for split, per in slides.items() for groups in per.values() for g in groups}
    record = contract.read_assignment(examples.uri)
    assert record["counts"]["eval"]["a"] == {"images": 6, "groups": 2}
    facts_uri = mlmd.output_artifacts(store, nodes["DataGate"])["data_report"][0].uri
    with open(f"{facts_uri}/data_report.md") as f:
        report = f.read()
    assert "stratified by each group's majority class" in report and "| a | 21 (7) | 6 (2) | 3 (1) |" in report


def test_a_class_with_two_slides_stops_the_data_gate_naming_class_and_split(tmp_path):
    data = slide_tiles(tmp_path / "data", {"a": 10, "b": 10, "c": 2})
    with pytest.raises(RuntimeError) as err:
        gate(tmp_path, data, "few")
    assert ("class c has 0 test slides (2 slides in all: 1 train, 1 eval, 0 test); a class "
            "needs at least 3 slides to reach every split") in str(err.value), err.value

    from inception_retrain.pipeline import mlmd

    metadata_path = gate(tmp_path, data, "few-warn", on_split_coverage="warn")
    store = mlmd.open_store(metadata_path)
    nodes = mlmd.latest_run_executions(store, "few-warn")
    facts_uri = mlmd.output_artifacts(store, nodes["DataGate"])["data_facts"][0].uri
    with open(f"{facts_uri}/data_facts.json") as f:
        facts = json.load(f)
    assert any("class c has 0 test slides" in w for w in facts["warnings"]), facts["warnings"]
