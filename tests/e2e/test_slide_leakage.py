"""Issue 14 in real pipelines: a slide in two split folders stops the DataGate naming the slide
(the warn setting records it instead); identical bytes under two classes stop the run before
training naming both paths; a grouped run with sites shows the split, the leakage checks and
the accuracy per site in the HTML report (rendered in headless Chromium), their numbers as in
the TFRecords and TFMA's output."""
import dataclasses
import json
import re
import shutil
import subprocess

import pytest
from conftest import quick_config, read_examples, run_data_gate_pipeline

GROUP = r"^(?:lab\d-)?(?P<group>S\d+)_"
SITE = r"^(?P<site>lab\d)-"


def png(path, seed):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24 + seed % 7, 20), ((seed * 37) % 255, (seed * 11) % 255, 90)).save(path)


def split_folder_data(root):
    """train/test folders; slide S03's tiles are in both."""
    seed = 0
    for split, slides in (("train", ["S01", "S02", "S03", "S04"]), ("val", ["S05", "S06"]),
                          ("test", ["S03", "S07"])):
        for n, slide in enumerate(slides):
            for i in range(3):
                seed += 1
                png(root / split / "ab"[n % 2] / f"{slide}_{split}{i}_0.png", seed)
    return root


def gate_pipeline(tmp_path, data, on_group_leakage):
    from inception_retrain.components.image_example_gen.component import ImageExampleGen
    from inception_retrain.components.image_example_gen.ingest import IngestOptions

    example_gen = ImageExampleGen(str(data), split_folders=("train", "val", "test"),
                                  options=IngestOptions(group_pattern=GROUP))
    return run_data_gate_pipeline(example_gen, tmp_path / on_group_leakage,
                                  f"leak-{on_group_leakage}", min_examples_per_class=1,
                                  on_group_leakage=on_group_leakage)


def test_a_slide_in_train_and_test_fails_the_gate_by_name_and_warn_records_it(tmp_path):
    from inception_retrain.pipeline import mlmd

    data = split_folder_data(tmp_path / "data")
    with pytest.raises(RuntimeError) as err:
        gate_pipeline(tmp_path, data, "fail")
    assert "group 'S03' is in 2 splits" in str(err.value), err.value
    assert "test/a/S03_test0_0.png" in str(err.value)

    metadata_path = gate_pipeline(tmp_path, data, "warn")
    store = mlmd.open_store(metadata_path)
    outputs = mlmd.output_artifacts(store, mlmd.latest_run_executions(store, "leak-warn")[
        "DataGate"])
    with open(f"{outputs['data_facts'][0].uri}/data_facts.json") as f:
        facts = json.load(f)
    assert facts["failures"] == []
    assert len(facts["warnings"]) == 1 and "'S03'" in facts["warnings"][0]
    assert facts["leakage"]["groups_in_several_splits"] == {"S03": {
        "test": [f"test/a/S03_test{i}_0.png" for i in range(3)],
        "train": [f"train/a/S03_train{i}_0.png" for i in range(3)]}}
    assert facts["split"]["grouped"] is True


def test_identical_bytes_under_two_classes_stop_the_run_before_training(tmp_path):
    from inception_retrain.pipeline import local_runner, mlmd

    data = tmp_path / "data"
    for i in range(8):
        png(data / "a" / f"a{i}.png", i)
        png(data / "b" / f"b{i}.png", 100 + i)
    shutil.copy(data / "a" / "a3.png", data / "b" / "same_as_a3.png")
    config = quick_config(tmp_path / "work", data)
    with pytest.raises(RuntimeError) as err:
        local_runner.run(config, local_runner.preflight(config))
    nodes = mlmd.latest_run_executions(mlmd.open_store(config.metadata_path),
                                       config.pipeline_name)
    assert "Transform" not in nodes and "Trainer" not in nodes, sorted(nodes)
    message = str(err.value)
    assert "under labels a, b" in message, message
    assert "a/a3.png (a)" in message and "b/same_as_a3.png (b)" in message


def site_tiles(root):
    """2 sites x 6 slides x 4 tiles, two classes; slide n of a site is class a or b."""
    for site in ("lab1", "lab2"):
        for n in range(6):
            label = "ab"[n % 2]
            for i in range(4):
                png(root / label / f"{site}-S{site[-1]}{n}_{i}_0.png",
                    n * 10 + i + (100 if site == "lab2" else 0))
    return root


def chromium_dom(html_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--dump-dom", f"file://{html_path}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def table_rows(dom, css_class):
    table = re.search(rf'<table class="{css_class}">(.*?)</table>', dom, re.S)
    assert table, css_class
    rows = [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(
        r"<td[^>]*>(.*?)</td>", row, re.S)] for row in re.findall(r"<tr>(.*?)</tr>",
                                                                  table.group(1), re.S)]
    return [row for row in rows if row]  # the header row has no <td>


def test_report_shows_split_leakage_and_sites_as_in_the_records_and_tfma(tmp_path):
    import tensorflow_model_analysis as tfma

    from inception_retrain.components import features
    from inception_retrain.pipeline import local_runner, mlmd
    from inception_retrain.run_rendering import report

    data = site_tiles(tmp_path / "data")
    config = quick_config(tmp_path / "work", data)
    config = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, group_pattern=GROUP, site_pattern=SITE,
                                 train_percent=50, eval_percent=50, test_percent=0),
        training=dataclasses.replace(config.training, image_size=75, phase1_epochs=1,
                                     phase2_epochs=0))
    local_runner.run(config, local_runner.preflight(config))
    files = report.build(config, max_examples=0)
    dom = chromium_dom(files.html)

    store = mlmd.open_store(config.metadata_path)
    nodes = mlmd.latest_run_executions(store, config.pipeline_name)
    examples = read_examples(mlmd.first_output(store, nodes["ImageExampleGen"], "examples").uri)

    def value(e, key):
        return e.features.feature[key].bytes_list.value[0].decode()

    split_rows = {row[0]: row for row in table_rows(dom, "split")}
    for split, records in examples.items():
        groups = {value(e, features.GROUP_KEY) for e in records}
        assert split_rows[split][1:3] == [str(len(records)), str(len(groups))], split
    train_groups = {value(e, features.GROUP_KEY) for e in examples["train"]}
    assert not train_groups & {value(e, features.GROUP_KEY) for e in examples["eval"]}
    leakage = {row[0]: row[1] for row in table_rows(dom, "leakage")}
    assert leakage["groups in more than one split"] == "0"
    assert leakage["identical files under more than one label"] == "0"

    evaluation = mlmd.first_output(store, nodes["Evaluator"], "evaluation").uri
    tfma_sites = {}
    for slice_metrics in tfma.load_metrics(evaluation):
        keys = slice_metrics.slice_key.single_slice_keys
        if len(keys) == 1 and keys[0].column == features.SITE_KEY:
            values = {kv.key.name: kv.value.double_value.value
                      for kv in slice_metrics.metric_keys_and_values
                      if not kv.key.is_diff and not kv.key.sub_key.ByteSize()}
            tfma_sites[keys[0].bytes_value.decode()] = values
    site_rows = {row[0]: row for row in table_rows(dom, "sites")}
    eval_sites = [value(e, features.SITE_KEY) for e in examples["eval"]]
    assert set(site_rows) == {"all sites"} | set(eval_sites)
    for site in set(eval_sites):
        assert site_rows[site][1] == str(eval_sites.count(site))
        assert site_rows[site][2] == f"{tfma_sites[site]['sparse_categorical_accuracy']:.4f}"
    assert site_rows["all sites"][1] == str(len(eval_sites))
