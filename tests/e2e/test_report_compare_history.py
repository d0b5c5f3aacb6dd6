"""Issue 16, items 1, 3, 4 and 6 on real runs: the session's flowers run (version 1 served) is
retrained with another seed, from the command line, against the served version with the
per-class no-regression rule on (not blessed: exit code 4), then re-gated with the rule off
(the Trainer reused from cache; pushed as version 2). The side-by-side section, the history,
the accuracy-per-version plot and the model card are checked against the metadata store and
TFMA's output of those runs (read here directly), and the page renders in headless Chromium.

Works on a copy of the flowers run's work dir (its metadata store and served versions), so the
other modules' view of that run is untouched."""
import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inception_retrain.cli import main as cli

CLASS_ID = "class_id"


def _store(metadata_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(metadata_path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def _runs(metadata_path):
    """[(run id, {node: {output key: artifact}})] oldest first, straight from ML Metadata."""
    from ml_metadata.proto import metadata_store_pb2

    store = _store(metadata_path)
    result = []
    for run in sorted(store.get_contexts_by_type("pipeline_run"),
                      key=lambda c: (c.create_time_since_epoch, c.id)):
        outputs = {}
        for execution in store.get_executions_by_context(run.id):
            node = [c.name.split(".", 1)[1] for c in
                    store.get_contexts_by_execution(execution.id) if c.type == "node"][0]
            events = [e for e in store.get_events_by_execution_ids([execution.id])
                      if e.type == metadata_store_pb2.Event.OUTPUT]
            by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
            outputs[node] = {e.path.steps[0].key: by_id[e.artifact_id] for e in events}
        result.append((run.name, outputs))
    return result


def _tfma(evaluation_uri):
    """{(model_name, metric, class id or None, is_diff): value} of the overall slice, and
    {model_name: confusion counts {(actual, predicted): n}}."""
    import tensorflow_model_analysis as tfma

    values, matrices = {}, {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for kv in metrics.metric_keys_and_values:
            if kv.value.HasField("double_value"):
                class_id = (kv.key.sub_key.class_id.value if kv.key.sub_key.HasField(CLASS_ID)
                            else None)
                values[(kv.key.model_name, kv.key.name, class_id, kv.key.is_diff)] = \
                    kv.value.double_value.value
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                entries = kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries
                matrices[kv.key.model_name] = {
                    (e.actual_class_id, e.predicted_class_id): round(e.num_weighted_examples)
                    for e in entries if e.num_weighted_examples}
    return values, matrices


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(flowers_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("compare_history")
    work = base / "work"
    work.mkdir()
    source = Path(flowers_run.config.work_dir)
    shutil.copy(source / "metadata.sqlite", work / "metadata.sqlite")
    shutil.copytree(Path(flowers_run.config.push_base), work / "serving" / "inception_v3")
    common = ["--data-root", str(flowers_run.data_root), "--work-dir", str(work),
              "--base-weights", "none", "--report-examples", "20",
              "--set", "data.min_examples_per_class=1", "--set", "training.batch_size=8",
              "--set", "training.phase1_epochs=3", "--set", "training.phase2_epochs=1",
              "--set", "evaluation.accuracy_floor=0", "--set", "training.seed=7",
              "--set", "evaluation.max_accuracy_drop=1",
              # 8 photos per class: below the default minimum evidence for a blessing
              "--set", "evaluation.min_eval_examples_per_class=1",
              "--set", "evaluation.min_eval_groups_per_class=1",
              "--set", "model_card.owners=[Flower Lab <lab@example.org>]",
              "--set", "model_card.license=CC-BY-4.0",
              "--set", "model_card.ethical_considerations=[Photos only; not for foraging.]"]
    # the per-class recall rules against the served model, and a floor the candidate cannot
    # meet on its 3 eval images (one per class; the candidate, the same model the pushed run
    # gets from the cache, misses at least one), so the gated run is refused for certain
    gated = _cli(["run", *common, "--set", "evaluation.max_class_recall_drop=0.5",
                  "--set", "evaluation.per_class_recall_floor=1"])
    reports = sorted((work / "reports").glob("*/report.json"))
    gated_report = max(reports, key=lambda p: p.stat().st_mtime)
    pushed = _cli(["run", *common])
    history = _cli(["history", "--work-dir", str(work), "--json"])
    rollback = _cli(["rollback", "--work-dir", str(work)])
    reports = sorted((work / "reports").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    return {"work": work, "gated": gated, "pushed": pushed, "history": history,
            "rollback": rollback, "gated_report": gated_report, "pushed_report": reports[-1],
            "store": _runs(work / "metadata.sqlite"), "flowers": flowers_run}


def test_the_gated_run_is_not_blessed_and_exits_with_its_code(runs):
    code, out, err = runs["gated"]
    assert code == cli.EXIT_NOT_BLESSED, err[-3000:]
    assert "[run] NOT BLESSED: top1_recall [class " in err and "next:" in err
    code, out, err = runs["pushed"]
    assert code == 0, err[-3000:]


def test_side_by_side_numbers_are_tfma_s_candidate_and_baseline(runs):
    data = json.loads(runs["gated_report"].read_text())
    run_id, outputs = runs["store"][-2]
    assert data["run"]["run_id"] == run_id
    evaluation_uri = outputs["Evaluator"]["evaluation"].uri
    values, matrices = _tfma(evaluation_uri)
    gate = json.loads((Path(evaluation_uri) / "gate.json").read_text())
    names = gate["class_names"]
    assert gate["baseline"]["source"] == "served" and gate["baseline"]["version"] == 1
    comparison = data["comparison"]
    assert comparison is not None
    assert [row["class"] for row in comparison["per_class"]] == sorted(names)
    for row in comparison["per_class"]:
        class_id = names.index(row["class"])
        for label, metric in (("precision", "top1_precision"), ("recall", "top1_recall")):
            for model in ("candidate", "baseline"):
                expected = values.get((model, metric, class_id, False))
                got = row[label][model]
                if expected is None or expected != expected:  # absent or NaN
                    assert got is None, (row["class"], label, model)
                else:
                    assert got == pytest.approx(expected), (row["class"], label, model)
            if row[label]["candidate"] is not None and row[label]["baseline"] is not None:
                assert row[label]["change"] == pytest.approx(
                    row[label]["candidate"] - row[label]["baseline"])
    for model in ("candidate", "baseline"):
        matrix = comparison["confusion_matrix"][model]
        counts = {(i, j): n for i, row in enumerate(matrix["counts"])
                  for j, n in enumerate(row) if n}
        assert counts == {k: v for k, v in matrices[model].items() if k[1] >= 0}, model
    overall = comparison["overall"]["sparse_categorical_accuracy"]
    assert overall["candidate"] == pytest.approx(
        values[("candidate", "sparse_categorical_accuracy", None, False)])
    assert overall["baseline"] == pytest.approx(
        values[("baseline", "sparse_categorical_accuracy", None, False)])
    page = runs["gated_report"].with_name("report.html").read_text()
    section = page.split('<h2 id="compare">', 1)[1].split("<h2", 1)[0]
    for row in comparison["per_class"]:
        for label in ("precision", "recall"):
            for model in ("candidate", "baseline"):
                value = row[label][model]
                if value is not None:
                    assert f'<td class="num">{value:.4f}</td>' in section
    assert section.count('<svg class="confusion"') == 2


def test_the_blessing_table_shows_the_per_class_recall_rule(runs):
    data = json.loads(runs["gated_report"].read_text())
    rules = [c for c in data["gate_checks"] if c["metric"] == "top1_recall"
             and c["kind"] == "change"]
    _, outputs = runs["store"][-2]
    names = json.loads((Path(outputs["Evaluator"]["evaluation"].uri)
                        / "gate.json").read_text())["class_names"]
    assert sorted(c["class"] for c in rules) == sorted(names)
    assert all(c["condition"] == "change vs baseline >= -0.5" for c in rules)
    assert any(c["passed"] is False for c in data["gate_checks"] if c["metric"] == "top1_recall")
    blessed = outputs["Evaluator"]["blessing"].custom_properties["blessed"].int_value
    assert blessed == 0 and data["summary"]["evaluation"]["blessed"] is False
    page = runs["gated_report"].with_name("report.html").read_text()
    blessing = page.split("<h2>Blessing decision</h2>", 1)[1].split("<h2", 1)[0]
    assert blessing.count("<td>change vs baseline &gt;= -0.5</td>") == len(names)
    pushed = json.loads(runs["pushed_report"].read_text())
    assert not [c for c in pushed["gate_checks"] if c["metric"] == "top1_recall"], \
        "off (1) by default: no per-class rule"


def _accuracy_of(outputs):
    values, _ = _tfma(outputs["Evaluator"]["evaluation"].uri)
    return values.get(("candidate", "sparse_categorical_accuracy", None, False),
                      values.get(("", "sparse_categorical_accuracy", None, False)))


def test_history_lists_every_run_and_version_of_the_store(runs):
    code, out, err = runs["history"]
    assert code == 0, err
    history = json.loads(out)
    store = runs["store"][::-1]  # history lists the newest run first
    assert [r["run_id"] for r in history["runs"]] == [run_id for run_id, _ in store]
    pushed_by = {}
    for entry, (run_id, outputs) in zip(history["runs"], store):
        if "Evaluator" in outputs:
            assert entry["accuracy"] == pytest.approx(_accuracy_of(outputs)), run_id
            blessed = outputs["Evaluator"]["blessing"].custom_properties["blessed"].int_value
            assert entry["blessed"] is bool(blessed)
            if not blessed:
                assert entry["outcome"].startswith("not blessed: ")
        pushed = outputs.get("Pusher", {}).get("pushed_model")
        if pushed is not None and pushed.custom_properties["pushed"].int_value \
                and not entry["reused"]:
            version = pushed.custom_properties["pushed_version"].int_value
            assert entry["pushed_version"] == version
            pushed_by[version] = entry
    assert sorted(pushed_by) == [1, 2]
    assert history["served_version"] == 2
    for version in history["versions"]:
        assert version["accuracy"] == pytest.approx(pushed_by[version["version"]]["accuracy"])
        low, high = version["interval"]
        assert low <= version["accuracy"] <= high
    code, out, err = runs["rollback"]
    assert code == 0, err
    # the table: version, served mark, publish time, accuracy, its interval
    assert re.search(r"^2\s+\*\s+\S+\s+\d\.\d{4}\s+\[", out, re.M), out
    assert re.search(r"^1\s+\S+\s+\d\.\d{4}\s+\[", out, re.M), out


def test_report_history_plot_is_the_accuracy_per_version(runs):
    data = json.loads(runs["pushed_report"].read_text())
    page = runs["pushed_report"].with_name("report.html").read_text()
    section = page.split("<h2>History</h2>", 1)[1].split("<h2", 1)[0]
    points = re.findall(r'class="version-point" data-version="(\d+)" data-accuracy="([0-9.]+)"',
                        section)
    by_version = {v["version"]: v["accuracy"] for v in data["history"]["versions"]}
    assert [int(v) for v, _ in points] == sorted(by_version) == [1, 2]
    for version, accuracy in points:
        assert float(accuracy) == pytest.approx(by_version[int(version)], abs=1e-4)
    run_of = {v["version"]: v["run_id"] for v in data["history"]["versions"]}
    store = dict(runs["store"])
    for version, run_id in run_of.items():
        assert by_version[version] == pytest.approx(_accuracy_of(store[run_id]))
    assert section.count("<tr>") >= len(runs["store"]) + 2


def test_model_card_has_the_user_fields_the_changes_and_a_json_twin(runs):
    data = json.loads(runs["pushed_report"].read_text())
    card = Path(data["model_card"])
    assert card.name == "2.md"
    text = card.read_text()
    assert "Flower Lab &lt;lab@example.org&gt;" in text and "CC\\-BY\\-4.0" in text
    assert "Photos only; not for foraging." in text
    assert "## Changes since the previous version" in text and "Replaces version 1" in text
    assert "training.seed: `42` → `7`." in text
    card_json = json.loads(card.with_suffix(".json").read_text())
    details = card_json["model_details"]
    assert details["owners"] == [{"name": "Flower Lab <lab@example.org>"}]
    assert details["licenses"] == [{"custom_text": "CC-BY-4.0"}]
    assert details["version"]["name"] == "2" and "Replaces version 1" in details["version"]["diff"]
    accuracy = [m for m in card_json["quantitative_analysis"]["performance_metrics"]
                if m["type"] == "accuracy" and m["slice"] == "eval"][0]
    assert float(accuracy["value"]) == pytest.approx(  # the schema's values are strings
        data["summary"]["evaluation"]["metrics"]["sparse_categorical_accuracy"], abs=1e-6)
    assert card_json["considerations"]["ethical_considerations"] == [
        {"name": "Photos only; not for foraging."}]
    # the schema has no training-settings key: they are a sentence of the documentation
    assert "; seed 7;" in card_json["model_details"]["documentation"]
    assert details["version"]["date"] == data["summary"]["push"]["pushed_at"][:10]


def test_new_sections_render_in_headless_chromium(runs, tmp_path):
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000",
             "--enable-logging=stderr", "--v=0"]
    for report in (runs["gated_report"], runs["pushed_report"]):
        html_path = report.with_name("report.html")
        dom = subprocess.run([chromium, *flags, "--dump-dom", html_path.as_uri()],
                             capture_output=True, text=True, timeout=180)
        assert dom.returncode == 0, dom.stderr[-2000:]
        for error in ("Uncaught", "Failed to load resource", "net::ERR_"):
            assert error not in dom.stderr, error
        for text in ("Candidate against the served model", "History", "Pushed versions",
                     'class="history"', "Sample training images per class", "Image sizes",
                     "tensorboard --logdir"):
            assert text in dom.stdout, (report, text)
        shot = tmp_path / f"{report.parent.name}.png"
        done = subprocess.run([chromium, *flags, f"--screenshot={shot}", html_path.as_uri()],
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        with Image.open(shot) as image:
            colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colors is None or len(colors) > 50
    assert "Candidate against the served model" in dom.stdout
