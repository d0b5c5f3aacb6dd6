"""The compiled Kubeflow pipeline, run task by task as each KFP backend profile and Vertex AI run
it: every task's own container command and args from the compiled spec, in a subprocess with
this checkout's Python, with the ExecutorInput each backend's driver builds
(tests/e2e/kfp_emulator.py says from which sources, and what it does not reproduce).

Under every profile two nights against one push destination: version 1 (no baseline), then, on
grown data, version 2 gated against the served version 1. One compile and one full run (KFP
2.5, plus a third night on unchanged data that comes from KFP's cache up to the Evaluator and
pushes nothing) are shared: KFP 2.4, 2.14, 2.17 and master (no ML Metadata) run the gate, push
and report tasks themselves on its upstream outputs, with pipeline roots on the emulated object
stores; their nights and the third run at once. A full single run: master on premises
(minio://), with non-default data keys (the data-key contract does not differ between
backends); Vertex runs both nights in full (its own compile and ExampleGen driver). The
s3:// run is in test_kfp_object_store.py. The pipeline is compiled with gs:// URIs, as the
kfp target requires; the runs then set data_root, push_base and schema_path and the pipeline
root, the way a run's parameters and pipeline root override the compiled defaults (the
emulator lets local paths stand for the bucket). The shared package is compiled for KFP 2.5
(no exit task: 2.4 and 2.5 cannot resolve its final status); the others end with the exit task
FinalReport (tests/e2e/kfp_exit_emulation.py), whose verdict after a good run is RunReporter's;
test_kfp_exit_task.py fails runs.
"""
import concurrent.futures
import json
import uuid
from pathlib import Path
from typing import Dict

import pytest
import yaml

from conftest import write_class_images
import kfp_emulator
from inception_retrain.components import node_ids
from inception_retrain.kubeflow import targets
from inception_retrain.kubeflow.exit_handler import pipeline_tasks
from inception_retrain.pipeline import config as config_lib

BUCKET = "gs://emulated-bucket"
CLASSES = {"daisy": 8, "roses": 8, "tulips": 8}


def emulated_config(**data) -> config_lib.PipelineConfig:
    """Tiny and fast: 75x75 images, one epoch per phase, no pretrained weights, a floor of 0,
    any accuracy drop allowed and one eval image per class enough evidence, so both runs
    push."""
    return config_lib.load(overrides={
        "work_dir": f"{BUCKET}/work",
        "data": dict({"root": f"{BUCKET}/images", "min_examples_per_class": 1}, **data),
        "training": {"image_size": 75, "phase1_epochs": 1, "phase2_epochs": 1, "batch_size": 4,
                     "base_weights": "none", "early_stopping_patience": 1},
        "evaluation": {"accuracy_floor": 0.0, "max_accuracy_drop": 1.0,
                       "min_eval_examples_per_class": 1, "min_eval_groups_per_class": 1},
    })


def compile_for(target: str, config: config_lib.PipelineConfig,
                kfp_version: str = targets.DEFAULT_KFP_VERSION) -> Dict:
    from inception_retrain.kubeflow import compile as compile_lib

    options = targets.CompileOptions(
        target=target, output="unused" + targets.TARGETS[target].extension,
        image="registry.example.com/inception-retrain:emulated", kfp_version=kfp_version)
    _, spec, _ = compile_lib.compile_spec(config, options)
    return spec


# Without a test split there is no TestSplitEvaluator: the shared KFP run has one, which saves
# the others half a minute per run.
NO_TEST_SPLIT = {"train_percent": 75, "eval_percent": 25, "test_percent": 0}


@pytest.fixture
def backend_env(env_with_legacy_keras):
    return dict(env_with_legacy_keras, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
                PYTHONWARNINGS="ignore")


def run_parameters(data_root: Path, push_base: Path) -> Dict[str, str]:
    from inception_retrain.pipeline.pipeline import default_schema_path

    return {"data_root": str(data_root), "push_base": str(push_base),
            "split_ledger": f"{push_base}.split_ledger.json",
            "schema_path": default_schema_path()}


def metadata(artifact: kfp_emulator.MlmdArtifact) -> Dict:
    return artifact.runtime_metadata()


def read_artifact(backend: kfp_emulator.Backend, uri: str) -> Path:
    """Where an artifact's files are: the backend's object store, or the path itself."""
    return backend.store_path(uri) if kfp_emulator.local_copy(uri) else Path(uri)


def assert_run(spec: Dict, runs: Dict[str, kfp_emulator.TaskRun], push_base: Path,
               version: int, baseline_version=None, backend=None) -> None:
    assert sorted(runs) == sorted(pipeline_tasks(spec))  # every task ran and succeeded
    pushed = metadata(runs["Pusher"].outputs["pushed_model"])
    assert pushed["pushed"] == 1.0 and pushed["pushed_version"] == float(version), pushed
    assert (push_base / str(version) / "saved_model.pb").is_file()
    assert sorted(p.name for p in push_base.iterdir() if p.name.isdigit()) == [
        str(v) for v in range(1, version + 1)]
    blessing = metadata(runs["Evaluator"].outputs["blessing"])
    assert blessing["blessed"] == 1.0, blessing
    assert "baseline_model_id" not in blessing  # the served snapshot has no ML Metadata id
    if baseline_version is None:
        assert blessing["baseline_source"] == "none", blessing
    else:
        assert blessing["baseline_source"] == "served", blessing
        assert blessing["baseline_served_version"] == float(baseline_version), blessing
        assert blessing["baseline_model"] == str(push_base / str(baseline_version))
    # The report step wrote what a local run's command writes: the report and the model card.
    report = runs["RunReporter"].outputs["report"]
    assert metadata(report)["verdict"] == f"Blessed and pushed as version {version}"
    card = push_base / "model_cards" / f"{version}.md"
    assert metadata(report)["model_card"] == str(card)
    assert card.read_text().startswith(f"# Model card: version {version}\n")
    folder = read_artifact(backend, report.uri) if backend else Path(report.uri)
    summary = json.loads((folder / "report.json").read_text())
    assert summary["summary"]["push"]["version"] == version, summary["summary"]["push"]
    assert "Blessed and pushed" in (folder / "report.html").read_text()
    if node_ids.FINAL_REPORT in runs:  # the exit task after a good run: RunReporter's verdict
        final = runs[node_ids.FINAL_REPORT].returned["report"]["metadata"]
        if report.uri.startswith("minio://"):  # no task records there (kubeflow/README.md)
            assert final["verdict"].startswith("Succeeded (the RunReporter left no record"), final
        else:
            assert final == {"verdict": metadata(report)["verdict"],
                             "report": f"{report.uri}/report.html"}, final
    # The Trainer's model reached the Evaluator and Pusher as the same recorded artifact.
    model = runs["Trainer"].outputs["model"]
    for task in ("Evaluator", "Pusher"):
        given = runs[task].executor_input["inputs"]["artifacts"]["model"]["artifacts"][0]
        assert given["uri"] == model.uri
        assert given.get("artifactId", given["name"]).endswith(str(model.id)), given


def new_backend(profile, folder: Path, env, parallel: int = 2) -> kfp_emulator.Backend:
    folder.mkdir(parents=True)
    return kfp_emulator.Backend(profile, folder, env=env, parallel=parallel)


def run_twice(profile, spec, tmp_path, env, data_root, before_second):
    backend = new_backend(profile, tmp_path / "backend", env)
    push_base = tmp_path / "serving" / "inception_v3"
    parameters = run_parameters(data_root, push_base)
    root = str(tmp_path / "pipeline_root")
    first = backend.run(spec, parameters, pipeline_root=root)
    assert_run(spec, first, push_base, version=1)
    before_second()
    second = backend.run(spec, parameters, pipeline_root=root)
    assert_run(spec, second, push_base, version=2, baseline_version=1)
    return backend, first, second


def grow(data_root: Path):
    """Two more images per class: new files, so a new fingerprint and a new model."""
    return lambda: write_class_images(data_root, {name: n + 2 for name, n in CLASSES.items()})


# Unchanged data on open-source KFP: these run again (DataFingerprint is never cached; the
# Evaluator, gating on the served model, neither; the Pusher gets its new blessing); the rest
# comes from KFP's cache, the Trainer included.
RUN_ON_UNCHANGED_DATA = {"DataFingerprint", "Evaluator", "Pusher", "RunReporter"}
# The tasks every other profile runs itself on the shared run's upstream: the gate against the
# served model, the push and the report, whose inputs carry the metadata each backend records
# its own way (ML Metadata's doubles and wrapped lists, or the returned struct as is).
GATE_AND_PUSH = ("Evaluator", "Pusher", "RunReporter")
# Each further profile's pipeline root: the object stores show the launcher's local copies
# (2.15+: outputFile in the task root's; without ML Metadata: every output must have one).
OTHER_PROFILES = {kfp_emulator.KFP_2_4: "local", kfp_emulator.KFP_2_14: "minio",
                  kfp_emulator.KFP_2_17: "gs", kfp_emulator.KFP_MASTER: "gs"}


def test_open_source_kfp_profiles_run_two_nights_gated_on_the_served_model(tmp_path, backend_env):
    """One compile and one full run of three nights under KFP 2.5 (version 1; version 2 on grown
    data gated against served version 1; unchanged data from the cache, nothing pushed). Then
    each other open-source profile runs its own two nights: the tasks whose ExecutorInput holds
    what its backend records (GATE_AND_PUSH) run under it, against its own push destination,
    on the shared run's upstream outputs recorded in its own store."""
    # the package for 2.4 and 2.5 (no exit task: their drivers cannot resolve its final status)
    spec = compile_for("kfp", emulated_config(), kfp_version="2.5")
    assert "TestSplitEvaluator" in spec["root"]["dag"]["tasks"]
    data_root = write_class_images(tmp_path / "images", CLASSES)
    backend = new_backend(kfp_emulator.KFP_2_5, tmp_path / "backend", backend_env)
    push_base = tmp_path / "serving" / "inception_v3"
    parameters = run_parameters(data_root, push_base)
    root = str(tmp_path / "pipeline_root")
    first = backend.run(spec, parameters, pipeline_root=root)
    assert_run(spec, first, push_base, version=1)
    grow(data_root)()
    second = backend.run(spec, parameters, pipeline_root=root)
    assert_run(spec, second, push_base, version=2, baseline_version=1)
    assert not any(task.cached for task in first.values())
    # grown data: a new fingerprint, so a new ImageExampleGen and all after it; only the
    # schema (same file, same image) comes from the cache
    assert [name for name, task in second.items() if task.cached] == ["ImportSchemaGen"]
    assert (second["DataFingerprint"].executor_output["parameterValues"]["fingerprint"]
            != first["DataFingerprint"].executor_output["parameterValues"]["fingerprint"])
    for runs in (first, second):
        assert_contract(kfp_emulator.KFP_2_5, runs, backend)
    # The third night and the other backends (separate clusters) depend only on the first
    # two nights: all at once.
    with concurrent.futures.ThreadPoolExecutor(len(OTHER_PROFILES) + 1) as pool:
        started = [pool.submit(assert_unchanged_data_run_is_cheap, backend, spec, tmp_path,
                               data_root, second)]
        started += [pool.submit(run_two_nights_on_shared_upstream, profile, store, spec,
                                tmp_path, backend_env, data_root, (first, second))
                    for profile, store in OTHER_PROFILES.items()]
        for done in started:
            done.result()


def run_two_nights_on_shared_upstream(profile, store, spec, tmp_path, env, data_root, nights):
    """The profile's own two nights: GATE_AND_PUSH run under it, the rest adopted from the
    shared nights."""
    other = new_backend(profile, tmp_path / profile.name, env)
    served = tmp_path / profile.name / "serving" / "inception_v3"
    bucket = f"emulated-{uuid.uuid4().hex[:12]}"
    other_root = {"local": str(tmp_path / profile.name / "pipeline_root"),
                  "minio": f"minio://{bucket}/root", "gs": f"gs://{bucket}/root"}[store]
    for night, shared in enumerate(nights, start=1):
        runs = other.run(spec, run_parameters(data_root, served), pipeline_root=other_root,
                         reuse={name: task for name, task in shared.items()
                                if name not in GATE_AND_PUSH})
        assert {name for name, task in runs.items() if not task.reused} == set(
            GATE_AND_PUSH), profile.name
        assert_run(spec, runs, served, version=night,
                   baseline_version=night - 1 or None, backend=other)
        assert_contract(profile, {name: runs[name] for name in GATE_AND_PUSH}, other)
        if store != "local":
            assert runs["Pusher"].outputs["pushed_model"].uri.startswith(other_root)
            assert_no_pod_copies_left(runs)


def assert_no_pod_copies_left(runs) -> None:
    """Every pod (a folder of its own bound over /minio, /gcs and /s3) wrote its local copies
    only at its outputs, which the launcher uploads, and none reached this machine's folders:
    a task can read only what its launcher downloaded from the store."""
    buckets = set()
    for name, task in runs.items():
        assert not task.left_in_pod, (name, task.left_in_pod[:10])
        for artifact in task.returned.values():
            local = kfp_emulator.local_copy(artifact["uri"])
            buckets |= {"/".join(local.split("/")[:3])} if local else set()
    assert buckets and not [b for b in buckets if Path(b).exists()], buckets  # /s3/<bucket>


EXIT_TASK_LOG = "inception_retrain.kubeflow.exit_task: "  # its verdict line (no TFX executor)


def assert_contract(profile, runs, backend) -> None:
    """What each task was handed and left, as the profile's backend does it."""
    for name, task in runs.items():
        outputs = task.executor_input["outputs"]
        assert ("executor-logs" in outputs["artifacts"]) == profile.executor_logs, name
        if profile.executor_logs:  # the launcher's log artifact: written and recorded
            logs = task.outputs["executor-logs"]
            assert logs.type_name == "system.Artifact"
            assert logs.uri.endswith("-0") == profile.logs_retry_suffix, logs.uri
            assert (EXIT_TASK_LOG if name == node_ids.FINAL_REPORT else "Starting executor") in (
                read_artifact(backend, logs.uri).read_text()), name
        for key, artifacts in outputs["artifacts"].items():
            assert artifacts["artifacts"][0].get("name") == (
                key if profile.outputs_by_key else None), (name, key)
        any_output = next(iter(outputs["artifacts"].values()))["artifacts"][0]["uri"]
        task_root = kfp_emulator.local_copy(any_output.rsplit("/", 1)[0])
        if profile.outputs_by_key and task_root:
            assert outputs["outputFile"] == f"{task_root}/output_metadata.json", name
        else:
            assert outputs["outputFile"].endswith("/kfp_outputs/output_metadata.json"), name
        if not task.cached:  # a cached task starts no pod
            assert (task.argv[0] == "setpriv") == profile.drops_capabilities, task.argv[:3]
        for artifacts in task.executor_input["inputs"]["artifacts"].values():
            artifact = artifacts["artifacts"][0]
            if profile.metadata_store:  # from ML Metadata: no type, the id as the name
                assert artifact["type"] == {"instanceSchema": ""} and artifact["name"].isdigit()
            else:  # the producer's key as name, an id, the instance schema as schemaTitle
                title = yaml.safe_load(artifact["type"]["schemaTitle"])["title"]
                assert title and "\n" in artifact["type"]["schemaTitle"], artifact
                assert artifact["artifactId"].isdigit(), artifact
                recorded = backend.mlmd.artifacts[int(artifact["artifactId"])]
                assert artifact["name"] == recorded.output_key, artifact


def assert_unchanged_data_run_is_cheap(backend, spec, tmp_path, data_root, previous):
    push_base = tmp_path / "serving" / "inception_v3"
    third = backend.run(spec, run_parameters(data_root, push_base),
                        pipeline_root=str(tmp_path / "pipeline_root"))
    assert sorted(third) == sorted(pipeline_tasks(spec))
    executed = {name for name, task in third.items() if not task.cached}
    assert executed == RUN_ON_UNCHANGED_DATA | ({"TestSplitEvaluator"} & set(third)), executed
    assert third["Trainer"].outputs["model"].id == previous["Trainer"].outputs["model"].id
    assert "Starting executor" in third["Evaluator"].log  # it did run, against version 2
    blessing = metadata(third["Evaluator"].outputs["blessing"])
    assert blessing["blessed"] == 1.0 and blessing["baseline_served_version"] == 2.0, blessing
    pushed = metadata(third["Pusher"].outputs["pushed_model"])
    assert pushed["already_served"] == 1.0 and pushed["pushed_version"] == 2.0, pushed
    assert sorted(p.name for p in push_base.iterdir() if p.name.isdigit()) == ["1", "2"]
    assert metadata(third["RunReporter"].outputs["report"])["verdict"].startswith(
        "Already served: version 2")


def test_vertex_runs_spans_through_the_example_gen_driver(tmp_path, backend_env):
    """Vertex runs ImageExampleGen's driver (lifecycle.preCacheCheck): it resolves {SPAN} to the
    newest span folder, so the second run trains on span 2 without any parameter change."""
    spec = compile_for("vertex", emulated_config(input_pattern="span-{SPAN}/*/*", **NO_TEST_SPLIT))
    data_root = tmp_path / "images"
    write_class_images(data_root / "span-1", CLASSES)

    def new_span():
        write_class_images(data_root / "span-2", {name: n + 2 for name, n in CLASSES.items()})

    _, first, second = run_twice(kfp_emulator.VERTEX, spec, tmp_path, backend_env, data_root,
                                 before_second=new_span)
    for runs, span in ((first, 1), (second, 2)):
        example_gen = runs["ImageExampleGen"]
        resolved = json.loads(example_gen.driver_output["parameterValues"]["input_config"])
        assert [split["pattern"] for split in resolved["splits"]] == [f"span-{span}/*/*"] * len(
            resolved["splits"]), resolved
        # The driver's span comes back from TFX's entrypoint as the custom property "span",
        # written "custom:span" in the metadata (it collides with the Examples property).
        assert metadata(example_gen.outputs["examples"])["custom:span"] == float(span)
        trained_on = runs["Trainer"].executor_input["inputs"]["artifacts"]["examples"]
        assert trained_on["artifacts"][0]["metadata"]["custom:span"] == float(span)


def test_on_premises_kfp_runs_without_gcs(tmp_path, backend_env):
    """An on-premises cluster, no cloud bucket: the pipeline root in KFP's own object store
    (minio://; the launcher copies artifacts between it and the pod's /minio/...), the images
    and the push destination on a PersistentVolumeClaim mounted into every task (the package's
    Kubernetes platform spec; TF Serving mounts the same claim). KFP master without ML
    Metadata, whose launcher fails a task whose declared outputs have no local copy. The data
    keys are not the defaults: the user's own split folders and class-balance rules, compiled
    (pipeline.dag_arguments), reach the tasks, and an imbalance set to warn does not stop the
    run."""
    import dataclasses

    from inception_retrain.kubeflow import compile as compile_lib

    lab = tmp_path / "lab"  # the volume: this folder, at its own path in every pod
    bucket = f"emulated-{uuid.uuid4().hex[:12]}"
    rules = {"max_class_ratio": 1.5, "min_class_fraction": 0.2, "on_imbalance": "warn",
             "max_label_drift": 0.5, "on_drift": "fail"}
    base = emulated_config(split_folders=("train", "val"), **rules)
    config = dataclasses.replace(
        base, work_dir=f"minio://{bucket}/work", serving_dir=str(lab / "serving"),
        data=dataclasses.replace(base.data, root=str(lab / "images")))
    options = targets.CompileOptions(
        target="kfp", output=str(tmp_path / "pipeline.yaml"),
        image="registry.example.com/inception-retrain:emulated",
        volumes=(targets.Volume("lab-data", str(lab)),))
    compiled = compile_lib.compile_pipeline(config, options)
    spec, platform = yaml.safe_load_all(Path(compiled.path).read_text())
    assert "TestSplitEvaluator" not in spec["root"]["dag"]["tasks"]  # two split folders
    data_root = lab / "images"
    write_class_images(data_root / "train", {"daisy": 10, "roses": 5, "tulips": 5})  # ratio 2
    write_class_images(data_root / "val", {"daisy": 3, "roses": 3, "tulips": 3})
    push_base = lab / "serving" / "inception_v3"
    backend = new_backend(kfp_emulator.KFP_MASTER, tmp_path / "backend", backend_env)
    runs = backend.run(spec, run_parameters(data_root, push_base), platform_spec=platform)
    assert_no_pod_copies_left(runs)
    assert_run(spec, runs, push_base, version=1, backend=backend)
    assert_contract(kfp_emulator.KFP_MASTER, runs, backend)
    for name, task in runs.items():
        for output, artifact in task.outputs.items():
            assert artifact.uri.startswith(f"minio://{bucket}/work/pipeline_root/"), (
                name, output, artifact.uri)
    model = runs["Trainer"].outputs["model"]
    stored = backend.store_path(model.uri)
    assert (stored / "Format-Serving" / "saved_model.pb").is_file(), sorted(stored.rglob("*"))
    report = backend.store_path(runs["RunReporter"].outputs["report"].uri)
    assert "Blessed and pushed as version 1" in (report / "report.html").read_text()
    gate = runs["DataGate"].executor_input["inputs"]["parameterValues"]
    assert {key: gate[key] for key in rules} == rules
    examples = metadata(runs["ImageExampleGen"].outputs["examples"])
    assert json.loads(examples["split_names"]) == ["train", "eval"]
    facts = read_artifact(backend, runs["DataGate"].outputs["data_report"].uri)
    report = " ".join(p.read_text(errors="replace") for p in facts.rglob("*") if p.is_file())
    assert "ratio" in report.lower(), report[:2000]
