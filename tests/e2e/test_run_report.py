"""The run report of a real run: its numbers are those in the metadata store (read here directly
with ml_metadata, TFMA and the TFRecords, not through run_rendering.summary), the page is
self-contained and renders in headless Chromium, and the pushed version gets a model card."""
import base64
import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inception_retrain.cli import main as cli
from inception_retrain.pipeline import local_runner
from inception_retrain.run_reading import misclassified
from inception_retrain.run_rendering import model_card

STATES = {3: "COMPLETE", 4: "FAILED", 5: "CACHED"}


@pytest.fixture(scope="module")
def rebuilt(flowers_run):
    """The flowers run again with its own configuration (every component reused from cache),
    so the newest run in the store is that run whatever other modules ran meanwhile; then
    `inception-retrain report` for it."""
    config = flowers_run.config
    local_runner.run(config, str(flowers_run.data_root))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["report", "--work-dir", config.work_dir, "--report-examples", "50"])
    assert code == 0, printed.getvalue()
    lines = dict(line.split(": ", 1) for line in printed.getvalue().splitlines() if ": " in line)
    html_path, json_path = Path(lines["report"]), Path(lines["summary for machines"])
    data = json.loads(json_path.read_text(), parse_constant=_refuse)
    return flowers_run, html_path, data, _store_facts(config.metadata_path)


def _refuse(name):
    raise ValueError(f"report.json holds {name}: not strict JSON")


def _store_facts(metadata_path: str):
    """The newest run straight from ML Metadata: run id, {node: execution},
    {node: {output key: artifact}}."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(connection)
    run = max(store.get_contexts_by_type("pipeline_run"),
              key=lambda c: (c.create_time_since_epoch, c.id))
    executions, outputs = {}, {}
    for execution in store.get_executions_by_context(run.id):
        node = [c.name.split(".", 1)[1] for c in store.get_contexts_by_execution(execution.id)
                if c.type == "node"][0]
        executions[node] = execution
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type == metadata_store_pb2.Event.OUTPUT]
        by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        outputs[node] = {e.path.steps[0].key: by_id[e.artifact_id] for e in events}
    return {"run_id": run.name, "executions": executions, "outputs": outputs}


def _labels_per_split(examples_uri: str):
    """{split: {label: count}} counted from the ExampleGen's TFRecords."""
    import tensorflow as tf

    counts = {}
    for split_dir in sorted(Path(examples_uri).glob("Split-*")):
        split = split_dir.name[len("Split-"):]
        counts[split] = {}
        files = [str(p) for p in sorted(split_dir.iterdir())]
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            label = tf.train.Example.FromString(record.numpy()).features.feature[
                "label"].bytes_list.value[0].decode()
            counts[split][label] = counts[split].get(label, 0) + 1
    return counts


def _tfma_overall(evaluation_uri: str):
    import tensorflow_model_analysis as tfma

    for metrics in tfma.load_metrics(evaluation_uri):
        if not metrics.slice_key.single_slice_keys:
            return {kv.key.name: kv.value.double_value.value
                    for kv in metrics.metric_keys_and_values
                    if kv.value.HasField("double_value") and not kv.key.HasField("sub_key")
                    and not kv.key.is_diff}
    raise AssertionError(f"no overall slice in {evaluation_uri}")


def test_report_is_for_the_newest_run_with_its_component_states(rebuilt):
    _, html_path, data, facts = rebuilt
    assert data["run"]["run_id"] == facts["run_id"]
    assert html_path.parent.name == "".join(
        c if c.isalnum() or c in "-_" else "-" for c in facts["run_id"]).strip("-")
    states = {c["component"]: c["state"] for c in data["summary"]["components"]}
    assert states == {node: STATES[e.last_known_state]
                      for node, e in facts["executions"].items()}
    # The data and training steps are reused. The gate runs again on the first rerun after a
    # push, because what is served changed (version 1, pushed by the first run), and then finds
    # its model already served; a later rerun (another module may have made one) reuses that.
    gate_steps = {"Evaluator", "Pusher", "TestSplitEvaluator"}
    assert {s for c, s in states.items() if c not in gate_steps} == {"CACHED"}, states
    assert len({states[c] for c in gate_steps}) == 1, states
    assert data["summary"]["push"]["already_served"] is True
    assert data["verdict"]["status"] == "good"
    assert data["verdict"]["text"].startswith("Already served: version 1")


def test_class_counts_are_those_of_the_examples(rebuilt):
    _, html_path, data, facts = rebuilt
    examples_uri = facts["outputs"]["ImageExampleGen"]["examples"].uri
    counted = _labels_per_split(examples_uri)
    assert data["summary"]["data"]["class_counts"] == counted
    page = html_path.read_text()
    header = re.search(r"<th>class</th>((?:<th>\w+</th>)+)<th>all splits</th>", page)
    splits = re.findall(r"<th>(\w+)</th>", header.group(1))
    assert sorted(splits) == sorted(counted)
    for label in counted["train"]:
        row = "".join(f'<td class="num">{counted[s].get(label, 0)}</td>' for s in splits)
        assert f"<td>{label}</td>{row}" in page, label
    assert "Quarantined files (0)" in page and "Anomalies (0)" in page


def test_evaluation_numbers_and_blessing_are_those_of_the_store(rebuilt):
    _, html_path, data, facts = rebuilt
    outputs = facts["outputs"]["Evaluator"]
    overall = _tfma_overall(outputs["evaluation"].uri)
    metrics = data["summary"]["evaluation"]["metrics"]
    for name in ("example_count", "sparse_categorical_accuracy"):
        assert metrics[name] == pytest.approx(overall[name]), name
    page = html_path.read_text()
    assert f'{overall["sparse_categorical_accuracy"]:.4f}' in page
    blessed = outputs["blessing"].custom_properties["blessed"].int_value == 1
    assert data["summary"]["evaluation"]["blessed"] is blessed is True
    checks = data["gate_checks"]
    floor = [c for c in checks if c["metric"] == "sparse_categorical_accuracy"
             and c["kind"] == "value"]
    assert floor and floor[0]["passed"] is True
    assert floor[0]["value"] == pytest.approx(overall["sparse_categorical_accuracy"])
    assert "<h2>Blessing decision</h2>" in page and '<td class="pass">passed</td>' in page


def test_confusion_matrix_and_misclassified_images_agree_with_the_evaluation(rebuilt):
    from PIL import Image

    flowers_run, html_path, data, facts = rebuilt
    overall = _tfma_overall(facts["outputs"]["Evaluator"]["evaluation"].uri)
    count = int(overall["example_count"])
    matrix = data["confusion_matrix"]
    assert sorted(matrix["classes"]) == sorted(flowers_run.classes)
    assert sum(map(sum, matrix["counts"])) + sum(matrix["no_prediction"]) == count
    correct = sum(matrix["counts"][i][i] for i in range(len(matrix["classes"])))
    assert correct == round(overall["sparse_categorical_accuracy"] * count)
    wrong = data["misclassified"]
    eval_examples = sum(data["summary"]["data"]["class_counts"]["eval"].values())
    assert wrong["skipped"] == "" and wrong["examined"] == min(eval_examples, 50)
    # The serving signature (raw bytes, as TF Serving receives them) agrees with TFMA's
    # evaluation through the tf.Example signature.
    assert wrong["misclassified"] == count - correct
    page = html_path.read_text()
    # the misclassified images' section (the data section has sample images too)
    section = page.split("<h3>Misclassified eval images</h3>", 1)[1].split("<h2", 1)[0]
    assert section.count("<figure>") == len(wrong["items"]) == min(wrong["misclassified"],
                                                                   misclassified.MAX_THUMBNAILS)
    for item in wrong["items"]:
        assert item["label"] != item["predicted"]
        assert f"<code>{item['path']}</code>" in section
    thumbnails = [part.split('"', 1)[0] for part in section.split('src="')[1:]]
    assert len(thumbnails) == len(wrong["items"])
    for uri in thumbnails:
        assert uri.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert max(image.size) <= misclassified.THUMBNAIL_PX
    assert 'class="confusion"' in page


def test_training_curves_show_both_phases_of_the_trainer_report(rebuilt):
    _, html_path, data, facts = rebuilt
    run_dir = Path(facts["outputs"]["Trainer"]["model_run"].uri)
    trainer_report = json.loads((run_dir / "training_report.json").read_text())
    for phase in ("phase1", "phase2"):
        assert (data["summary"]["training"][phase]["history"]
                == trainer_report[phase]["history"]), phase
    page = html_path.read_text()
    page = page.split("<h2>Training</h2>", 1)[1].split("<h2", 1)[0]  # the history has points too
    assert page.count('<svg class="chart"') == 2
    epochs = sum(len(trainer_report[p]["history"]["loss"]) for p in ("phase1", "phase2"))
    # loss and val_loss, accuracy and val_accuracy: one marker per epoch and series.
    assert page.count("<circle") == 4 * epochs
    assert "phase 2</text>" in page


def test_push_and_model_card(rebuilt):
    flowers_run, html_path, data, facts = rebuilt
    pushed = facts["outputs"]["Pusher"]["pushed_model"].custom_properties
    version = pushed["pushed_version"].int_value
    assert data["summary"]["push"]["version"] == version
    card = Path(flowers_run.config.push_base) / model_card.CARDS_DIR / f"{version}.md"
    assert data["model_card"] == str(card) and card.exists()
    text = card.read_text()
    accuracy = data["summary"]["evaluation"]["metrics"]["sparse_categorical_accuracy"]
    assert text.startswith(f"# Model card: version {version}")
    assert f"**{accuracy:.4f}**" in text
    for heading in ("## Model", "## Intended use", "## Data", "## Training", "## Metrics",
                    "## Limits"):
        assert heading in text
    for name in flowers_run.classes:
        assert name in text
    assert "random weights" in text, "the run used base_weights=none; the card must say so"
    # the code that trained it, as the Trainer recorded it: this checkout's commit
    head = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    trained_by = re.search(r"^- Code: inception-retrain \S+, commit `([0-9a-f]+)(-dirty)?`\.$",
                           text, re.M)
    assert trained_by and trained_by.group(1) == head, (head, text)
    page = html_path.read_text()
    assert f"Version <b>{version}</b>" in page and str(card) in page
    # TF Serving and the pusher's retention see integer directories only.
    from inception_retrain.serving import versions

    assert model_card.CARDS_DIR not in map(str, versions.list_versions(
        flowers_run.config.push_base))


def test_page_is_self_contained(rebuilt):
    _, html_path, _, _ = rebuilt
    page = html_path.read_text()
    for reference in ('src="http', 'href="http', "url(", "<script", "<link", "@import"):
        assert reference not in page, reference
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_page_renders_in_headless_chromium(rebuilt, tmp_path):
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; .ci/run "
                    "installs it on CI)")
    _, html_path, _, _ = rebuilt
    screenshot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000",
             "--enable-logging=stderr", "--v=0"]
    shot = subprocess.run([chromium, *flags, f"--screenshot={screenshot}",
                           html_path.as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0, shot.stderr[-2000:]
    for error in ("Uncaught", "Failed to load resource", "net::ERR_", "Not allowed to load"):
        assert error not in shot.stderr, error
    with Image.open(screenshot) as image:
        assert image.size == (1200, 3000)
        colors = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is None or len(colors) > 50, "the screenshot is (nearly) blank"
    dom = subprocess.run([chromium, *flags, "--dump-dom", html_path.as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for text in ("Run report: inception-retrain", "Confusion matrix", "Blessing decision",
                 "Misclassified eval images", "<svg"):
        assert text in dom.stdout, text
