"""Kubeflow compile: the real KubeflowV2DagRunner output, parsed back with kfp-pipeline-spec and
checked for what the open-source KFP backend and Vertex need: schema 2.1.0, the DAG's tasks and
their dependencies, images, resources, runtime parameters with defaults, Beam arguments, and the
refusal of a resolver node for open-source KFP. Also the pipeline image's build-time check and the
Dockerfile's agreement with the compile target. No cluster is involved."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inception_retrain.components import node_ids
from inception_retrain.kubeflow import exit_handler, parameters, targets
from inception_retrain.kubeflow.exit_handler import pipeline_tasks
from inception_retrain.pipeline import config as config_lib

REPO = Path(__file__).resolve().parents[3]
IMAGE = "registry.example.com/ml/inception-retrain:1.0"
TRAINER_IMAGE = "registry.example.com/ml/inception-retrain-gpu:1.0"
DATAFLOW_ARGS = ("--runner=DataflowRunner", "--project=my-project", "--region=europe-west4",
                 "--temp_location=gs://bucket/tmp", f"--sdk_container_image={IMAGE}")
# The DAG's core chain: each task and the tasks it must wait for (its inputs' producers).
CORE_DEPENDENCIES = {  # the kfp target's (Vertex has no DataFingerprint)
    "DataFingerprint": set(),
    "ImageExampleGen": {"DataFingerprint"},
    "ImportSchemaGen": set(),
    "StatisticsGen": {"ImageExampleGen"},
    "ExampleValidator": {"ImportSchemaGen", "StatisticsGen"},
    "DataGate": {"ExampleValidator", "ImageExampleGen", "StatisticsGen"},
    "Transform": {"DataGate", "ImageExampleGen", "ImportSchemaGen"},  # gated: explicit edge
    "Trainer": {"DataGate", "ImageExampleGen", "Transform"},
    "Evaluator": {"ImageExampleGen", "Trainer"},
    "Pusher": {"Evaluator", "Trainer"},
}
BEAM_TASKS = ("ImageExampleGen", "StatisticsGen", "Transform", "Evaluator")
# task -> {its input: the runtime parameter feeding it}
PARAMETER_INPUTS = {
    "ImageExampleGen": {"input_base": "data_root", "split_ledger": "split_ledger"},
    "ImportSchemaGen": {"schema_file": "schema_path"},
    "DataGate": {"min_examples_per_class": "min_examples_per_class",
                 "max_quarantined_fraction": "max_quarantined_fraction"},
    "Trainer": {"custom_config": "training_config"},
    "Evaluator": {"eval_config": "eval_config", "max_accuracy_drop": "max_accuracy_drop"},
    "Pusher": {"push_base": "push_base", "keep_versions": "keep_versions"},
}


def kubeflow_config(**overrides) -> config_lib.PipelineConfig:
    values = {"work_dir": "gs://bucket/inception", "data": {"root": "gs://bucket/images"},
              "training": {"phase1_epochs": 4, "phase1_learning_rate": 0.002},
              "evaluation": {"accuracy_floor": 0.75}}
    for key, value in overrides.items():
        values[key] = dict(values.get(key, {}), **value) if isinstance(value, dict) else value
    return config_lib.load(overrides=values)


def options(tmp_path, target="kfp", **kwargs) -> targets.CompileOptions:
    extension = targets.TARGETS[target].extension
    return targets.CompileOptions(target=target, output=str(tmp_path / f"pipeline{extension}"),
                                  image=IMAGE, **kwargs)


@pytest.fixture(scope="module")
def compile_lib():
    # imports TFX: about a minute on a cold start
    from inception_retrain.kubeflow import compile as compile_lib

    return compile_lib


@pytest.fixture(scope="module")
def kfp_spec(compile_lib, tmp_path_factory):
    """The open-source KFP target compiled to a file and read back as YAML."""
    out = tmp_path_factory.mktemp("kfp")
    config = kubeflow_config(beam_args=list(DATAFLOW_ARGS))
    compile_lib.compile_pipeline(config, options(out, trainer_image=TRAINER_IMAGE))
    return yaml.safe_load((out / "pipeline.yaml").read_text()), config


@pytest.fixture(scope="module")
def vertex_job(compile_lib, tmp_path_factory):
    out = tmp_path_factory.mktemp("vertex")
    compile_lib.compile_pipeline(kubeflow_config(), options(out, target="vertex"))
    return json.loads((out / "pipeline.json").read_text())


def executor_of(spec, task):
    label = spec["components"][pipeline_tasks(spec)[task]["componentRef"]["name"]][
        "executorLabel"]
    return spec["deploymentSpec"]["executors"][label]


def walk(value, path=()):
    """Every (path, key, value) in a nested dict/list."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key, item
            yield from walk(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, path + (index,))


def test_kfp_yaml_is_a_schema_2_1_pipeline_spec(kfp_spec):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec, config = kfp_spec
    parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig())
    assert parsed.schema_version == "2.1.0"  # the only version open-source KFP accepts
    assert parsed.pipeline_info.name == config.pipeline_name
    assert parsed.default_pipeline_root == "gs://bucket/inception/pipeline_root"
    # The open-source driver resolves only `constant` values and `parameterType`s: no legacy
    # (schema 2.0.0) `constantValue` or `type` anywhere.
    legacy = [(path, key) for path, key, _ in walk(spec)
              if key == "constantValue" or (key == "type" and "parameters" in path)]
    assert legacy == []


def test_tasks_and_their_dependencies(kfp_spec):
    tasks = {name: task for name, task in pipeline_tasks(kfp_spec[0]).items()
             if name != node_ids.FINAL_REPORT}
    assert set(CORE_DEPENDENCIES) <= set(tasks)
    for task, upstream in CORE_DEPENDENCIES.items():
        assert set(tasks[task].get("dependentTasks", [])) == upstream, task
    # Every dependency names a task of this DAG and the graph has no cycle: a topological
    # order exists, with the chain in the expected order.
    order, placed = [], set()
    while len(order) < len(tasks):
        ready = sorted(t for t in tasks if t not in placed
                       and set(tasks[t].get("dependentTasks", [])) <= placed)
        assert ready, f"cycle or unknown dependency among {set(tasks) - placed}"
        order += ready
        placed.update(ready)
    chain = ["ImageExampleGen", "StatisticsGen", "ExampleValidator", "DataGate", "Trainer",
             "Evaluator", "Pusher"]
    assert [t for t in order if t in chain] == chain


def test_images_and_entrypoint(kfp_spec):
    spec = kfp_spec[0]
    for task in set(pipeline_tasks(spec)) - {node_ids.FINAL_REPORT}:
        container = executor_of(spec, task)["container"]
        assert container["image"] == (TRAINER_IMAGE if task == "Trainer" else IMAGE), task
        # The project's entrypoint (it repairs the backend's ExecutorInput, then runs TFX's).
        assert container["command"] == ["python", "-m", "inception_retrain.kubeflow.entrypoint"]
        args = container["args"]
        class_path = args[args.index("--executor_class_path") + 1]
        assert re.fullmatch(r"[\w.]+", class_path), class_path
        component = spec["components"][pipeline_tasks(spec)[task]["componentRef"]["name"]]
        inputs_spec = json.loads(args[args.index("--json_serialized_inputs_spec_args") + 1])
        assert inputs_spec.get("artifacts", {}) == component["inputDefinitions"].get(
            "artifacts", {}), task
        outputs_spec = json.loads(args[args.index("--json_serialized_outputs_spec_args") + 1])
        assert outputs_spec == component["outputDefinitions"], task


def test_resources_per_task(kfp_spec):
    spec = kfp_spec[0]
    for task in pipeline_tasks(spec):
        resources = executor_of(spec, task)["container"]["resources"]
        expected = targets.DEFAULT_RESOURCES.get(task, targets.FALLBACK_RESOURCES)
        assert resources["cpuRequest"] == resources["cpuLimit"] == expected.cpu, task
        assert resources["memoryRequest"] == resources["memoryLimit"] == expected.memory_gb
        if task == "Trainer":
            assert resources["accelerator"] == {"type": "nvidia.com/gpu", "count": 1}
        else:
            assert "accelerator" not in resources, task


def test_resource_overrides_and_vertex_accelerator(compile_lib, tmp_path):
    job, spec, _ = compile_lib.compile_spec(kubeflow_config(), options(
        tmp_path, target="vertex",
        resources=targets.parse_resources(["Trainer.gpu=2", "Trainer.memory=60",
                                           "Transform.cpu=16"])))
    trainer = executor_of(spec, "Trainer")["container"]["resources"]
    assert trainer == {"cpuLimit": 8, "memoryLimit": 60, "accelerator": {
        "type": "NVIDIA_TESLA_T4", "count": 2}}  # Vertex sizes machines from limits
    assert executor_of(spec, "Transform")["container"]["resources"]["cpuLimit"] == 16


def test_runtime_parameters_have_defaults_and_feed_their_tasks(kfp_spec):
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    spec, config = kfp_spec
    declared = spec["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == set(parameters.BY_NAME)
    kinds = {str: "STRING", int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE"}
    for parameter in parameters.PARAMETERS:
        assert declared[parameter.name]["parameterType"] == kinds[parameter.ptype], parameter.name
        assert declared[parameter.name]["isOptional"] is True
        assert declared[parameter.name]["description"] == parameter.description
    assert declared["data_root"]["defaultValue"] == "gs://bucket/images"
    assert declared["schema_path"]["defaultValue"] == targets.IMAGE_SCHEMA_PATH
    assert declared["push_base"]["defaultValue"] == config.push_base
    assert declared["min_examples_per_class"]["defaultValue"] == 2
    assert declared["keep_versions"]["defaultValue"] == config.keep_versions
    training = json.loads(declared["training_config"]["defaultValue"])
    assert training["phase1_epochs"] == 4 and training["phase1_learning_rate"] == 0.002
    eval_config = json_format.Parse(declared["eval_config"]["defaultValue"], tfma.EvalConfig())
    accuracy = [m for spec_ in eval_config.metrics_specs for m in spec_.metrics
                if m.class_name == "SparseCategoricalAccuracy"]
    assert accuracy[0].threshold.value_threshold.lower_bound.value == pytest.approx(0.75)

    tasks = pipeline_tasks(spec)
    for task, inputs in PARAMETER_INPUTS.items():
        for task_input, name in inputs.items():
            assert tasks[task]["inputs"]["parameters"][task_input] == {
                "componentInputParameter": name}, (task, task_input)


def test_beam_arguments_reach_every_beam_task(kfp_spec):
    spec = kfp_spec[0]
    for task in BEAM_TASKS:
        args = executor_of(spec, task)["container"]["args"]
        assert tuple(args[-len(DATAFLOW_ARGS):]) == DATAFLOW_ARGS, task


def test_kfp_output_has_only_container_and_importer_executors(kfp_spec):
    kinds = {kind for executor in kfp_spec[0]["deploymentSpec"]["executors"].values()
             for kind in executor}
    assert kinds <= {"container", "importer"}


def test_kfp_tasks_reading_outside_state_are_never_cached(kfp_spec, vertex_job):
    tasks = pipeline_tasks(kfp_spec[0])
    assert tasks["DataFingerprint"]["cachingOptions"] == {"enableCache": False}
    # cached: a new Schema artifact each run would retrain on unchanged data
    assert tasks["ImportSchemaGen"]["cachingOptions"] == {"enableCache": True}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}
    # ImageExampleGen may cache: its cache key holds the files' fingerprint, a parameter from
    # DataFingerprint's task (named as the task is, not as TFX's step builder names it).
    assert tasks["ImageExampleGen"]["cachingOptions"] == {"enableCache": True}
    assert tasks["ImageExampleGen"]["inputs"]["parameters"]["input_fingerprint"] == {
        "taskOutputParameter": {"producerTask": "DataFingerprint",
                                "outputParameterKey": "fingerprint"}}
    fingerprint = tasks["DataFingerprint"]["inputs"]["parameters"]
    assert fingerprint["input_base"] == {"componentInputParameter": "data_root"}
    assert (fingerprint["input_config"]
            == tasks["ImageExampleGen"]["inputs"]["parameters"]["input_config"])
    # On Vertex the ExampleGen driver (preCacheCheck) fingerprints the input, so it may cache.
    vertex = vertex_job["pipelineSpec"]
    assert pipeline_tasks(vertex)["ImageExampleGen"]["cachingOptions"] == {
        "enableCache": True}
    assert "preCacheCheck" in executor_of(vertex, "ImageExampleGen")["container"]["lifecycle"]
    assert "DataFingerprint" not in pipeline_tasks(vertex)
    # The gate against the served model reads the push destination: never from cache.
    for spec in (kfp_spec[0], vertex):
        assert pipeline_tasks(spec)["Evaluator"]["cachingOptions"] == {
            "enableCache": False}


def test_resolver_makes_the_kfp_compile_refuse(compile_lib, tmp_path):
    config = kubeflow_config(evaluation={"baseline": "latest_blessed"})
    with pytest.raises(compile_lib.UnsupportedNodeError,
                       match=r"latest_blessed_model_resolver-model-resolver \(resolver\)"):
        compile_lib.compile_pipeline(config, options(tmp_path))
    assert not (tmp_path / "pipeline.yaml").exists()
    # The same DAG compiles for Vertex, which runs resolvers: the refusal is the target's.
    _, spec, _ = compile_lib.compile_spec(config, options(tmp_path, target="vertex"))
    assert "resolver" in executor_of(spec, "latest_blessed_model_resolver-model-resolver")


def test_vertex_pipeline_job(vertex_job):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    job = json_format.ParseDict(vertex_job, pipeline_spec_pb2.PipelineJob())
    assert job.runtime_config.gcs_output_directory == "gs://bucket/inception/pipeline_root"
    assert vertex_job["pipelineSpec"]["schemaVersion"] == "2.1.0"
    trainer = executor_of(vertex_job["pipelineSpec"], "Trainer")["container"]
    assert trainer["image"] == IMAGE and "cpuRequest" not in trainer["resources"]


@pytest.mark.parametrize("overrides, option_changes, message", [
    ({"data": {"root": "/home/me/images"}}, {}, r"data\.root must be a gs:// URI or a path on "
                                                r"a volume .*volumes: none given"),
    ({"data": {"root": "/home/me/images"}}, {"volumes": (targets.Volume("lab", "/mnt/lab"),)},
     r"data\.root .*volumes: lab:/mnt/lab\)"),
    ({"data": {"root": "minio://mlpipeline/images"}}, {}, r"data\.root .*TFX reads this by path"),
    ({"work_dir": "runs/k"}, {}, r"work_dir .* must start with gs:// or minio:// or s3://"),
    ({"work_dir": "/mnt/lab/work"}, {"volumes": (targets.Volume("lab", "/mnt/lab"),)},
     r"work_dir .*launcher accepts only object-store pipeline roots"),
    ({"serving_dir": "/srv/models"}, {}, r"serving_dir .* must be a gs:// URI or a path on a"),
    ({}, {"target": "vertex", "output": "p.json", "volumes": (targets.Volume("lab", "/mnt"),)},
     r"--volume: the vertex target mounts no PersistentVolumeClaims"),
    ({"data": {"root": "s3://bucket/images"}}, {"target": "vertex"}, r"gs:// URI for Vertex"),
    ({"pipeline_name": "Inception_Retrain"}, {}, r"pipeline_name must be lower-case"),
    ({"training": {"base_weights": "gs://b/w.h5"}}, {}, r"training\.base_weights"),
    ({"beam_args": ["--runner=DataflowRunner", "--project=p", "--region=r"]}, {},
     r"--temp_location"),
    ({"beam_args": list(DATAFLOW_ARGS[:-1])}, {}, r"--sdk_container_image"),
    ({"beam_args": ["--runner=FlinkRunner"]}, {}, r"--flink_master"),
    ({"beam_args": ["runner=DirectRunner"]}, {}, r"starts with --"),
    ({}, {"output": "pipeline.json"}, r"--output for target kfp must end with \.yaml"),
    ({}, {"image": ""}, r"--image must be an image reference"),
    # open-source KFP never runs ExampleGen's driver, which resolves these
    ({"data": {"input_pattern": "span-{SPAN}/*/*"}}, {}, r"data\.input_pattern .*\{SPAN\}"),
    ({"data": {"input_pattern": "v{VERSION:2}/*/*"}}, {}, r"data\.input_pattern .*\{VERSION:2\}"),
    ({"data": {"input_pattern": "{YYYY}-{MM}-{DD}/*/*"}}, {}, r"data\.input_pattern .*\{YYYY\}"),
])
def test_bad_requests_stop_before_compiling(tmp_path, overrides, option_changes, message):
    config = kubeflow_config(**overrides)
    values = dict(target="kfp", output=str(tmp_path / "p.yaml"), image=IMAGE)
    values.update(option_changes)
    if "output" not in option_changes:
        values["output"] = str(tmp_path / f"p{targets.TARGETS[values['target']].extension}")
    with pytest.raises(config_lib.ConfigError, match=message):
        targets.check(config, targets.CompileOptions(**values))


def test_spans_are_accepted_where_the_example_gen_driver_runs(tmp_path):
    config = kubeflow_config(data={"input_pattern": "span-{SPAN}/*/*"})
    targets.check(config, targets.CompileOptions(target="vertex", output=str(tmp_path / "p.json"),
                                                 image=IMAGE))


@pytest.mark.parametrize("assignment, message", [
    ("Trainer.gpus=1", r"COMPONENT\.cpu\|memory\|gpu"),
    ("Trainr.cpu=2", r"unknown component 'Trainr'"),
    ("Trainer.gpu=0.5", r"whole number"),
    ("Transform.memory=0", r"> 0"),
])
def test_bad_resource_overrides_name_the_key(assignment, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        targets.parse_resources([assignment])


def test_cli_refuses_a_bad_request_without_importing_tfx(tmp_path):
    """`inception-retrain compile` exits 2 with the message, before TFX is ever imported."""
    code = ("import sys; from inception_retrain.cli.main import main; rc = main(sys.argv[1:]); "
            "print('tfx imported' if 'tfx' in sys.modules else 'tfx not imported'); "
            "sys.exit(rc)")
    out = tmp_path / "p.yaml"
    result = subprocess.run(
        [sys.executable, "-c", code, "compile", "--image", IMAGE, "--work-dir", "gs://b/w",
         "--data-root", str(tmp_path), "--output", str(out)],
        capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert "config error: data.root must be a gs:// URI or a path on a volume" in result.stderr
    assert result.stdout.strip().endswith("tfx not imported")
    assert not out.exists()


def test_image_check_passes_here_and_catches_broken_paths(kfp_spec):
    from inception_retrain.kubeflow import image_check

    # This checkout, installed editable like the image installs /pipeline.
    assert image_check.problems(install_root=str(REPO)) == []
    paths = image_check.dotted_paths(kfp_spec[0])
    assert {"inception_retrain.components.image_example_gen.executor.Executor",
            "inception_retrain.components.transform.preprocessing.preprocessing_fn",
            "inception_retrain.components.trainer.run.run_fn"} <= set(paths)
    broken = image_check.import_problems(["inception_retrain.components.no_such_module.run_fn",
                                          "inception_retrain.components.trainer.run.no_such_fn"])
    assert len(broken) == 2 and "no_such_module" in broken[0] and "no_such_fn" in broken[1]
    assert image_check.problems(install_root="/elsewhere")[0].startswith(
        "the installed package resolves the schema")
    assert "inception_retrain.kubeflow.entrypoint.main" in image_check.entrypoint_modules(
        kfp_spec[0])


def test_image_check_resolves_artifact_type_titles_as_tfx_entrypoint_does(kfp_spec):
    from inception_retrain.kubeflow import image_check

    types = image_check.artifact_types(kfp_spec[0])
    assert any("inception_retrain.ImageDataReport" in str(t) for t in types.values())
    assert image_check.artifact_type_problems(types) == []
    broken = image_check.artifact_type_problems({
        "X.outputs.report": {"schemaTitle": "inception_retrain.NoSuchReport"},
        "X.outputs.logs": {"schemaTitle": "system.Artifact"},
        "X.inputs.examples": {"instanceSchema": "title: tfx.Examples\ntype: object\n"}})
    assert len(broken) == 2, broken
    assert "X.outputs.logs" in broken[0] and "system.Artifact" in broken[0]
    assert "X.outputs.report" in broken[1] and "NoSuchReport" in broken[1]


def test_dockerfile_matches_the_compile_target():
    dockerfile = (REPO / "inception_retrain" / "kubeflow" / "Dockerfile").read_text()
    from_arg = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.M).group(1)
    assert from_arg == targets.TFX_IMAGE
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    assert re.search(rf"^WORKDIR {targets.IMAGE_ROOT}$", dockerfile, re.M)
    assert re.search(r"TF_USE_LEGACY_KERAS=1", dockerfile)
    # from the build context (COPY --from copies out of another image)
    copied = set(re.findall(r"^COPY (?!--from=)(.+) \S+$", dockerfile, re.M))
    copied = {item.rstrip("/") for line in copied for item in line.split()}
    packages = {init.parent.name for init in REPO.glob("*/__init__.py")}  # the package folder
    assert packages == {"inception_retrain"}
    assert packages | {"schema", "setup.py", "requirements.lock"} <= copied
    assert "pip install --no-cache-dir --no-deps -e ." in dockerfile
    assert f"kubeflow.image_check --install-root {targets.IMAGE_ROOT}" in dockerfile
    ignore = (REPO / "inception_retrain" / "kubeflow" / "Dockerfile.dockerignore").read_text().split()
    assert {f"!{item}/" if item in packages | {"schema"} else f"!{item}"
            for item in copied} <= set(ignore)


def test_cli_compiles_with_config_overrides_resources_and_beam_args(compile_lib, tmp_path,
                                                                    capsys):
    from inception_retrain.cli.main import main

    out = tmp_path / "p.yaml"
    assert main(["compile", "--image", IMAGE, "--work-dir", "gs://b/w", "--data-root",
                 "gs://b/images", "--output", str(out), "--resource", "Trainer.gpu=2",
                 "--beam-arg=--direct_num_workers=2", "--set", "training.phase1_epochs=7"]) == 0
    spec = yaml.safe_load(out.read_text())
    trainer = executor_of(spec, "Trainer")["container"]
    assert trainer["resources"]["accelerator"]["count"] == 2
    assert trainer["args"][-1] == "--direct_num_workers=2"
    declared = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(declared["training_config"]["defaultValue"])["phase1_epochs"] == 7
    assert f"wrote {out}" in capsys.readouterr().out


def test_on_premises_compile_mounts_the_volume_into_every_task(compile_lib, tmp_path):
    """No GCS: the pipeline root in KFP's own object store (minio://), the images and the push
    destination on a PersistentVolumeClaim that TF Serving mounts too. The package then holds
    the PipelineSpec and a Kubernetes PlatformSpec, and `schedule create` reads it."""
    from inception_retrain.kubeflow import schedule

    config = kubeflow_config(work_dir="minio://mlpipeline/inception",
                             data={"root": "/mnt/lab/tiles"}, serving_dir="/mnt/lab/serving")
    compiled = compile_lib.compile_pipeline(config, options(
        tmp_path, volumes=targets.parse_volumes(["lab-data:/mnt/lab"])))
    spec, platform = yaml.safe_load_all(Path(compiled.path).read_text())
    assert spec["defaultPipelineRoot"] == "minio://mlpipeline/inception/pipeline_root"
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    containers = {label for label, e in spec["deploymentSpec"]["executors"].items()
                  if "container" in e}
    assert set(executors) == containers and len(containers) >= 10
    for config_of_task in executors.values():
        assert config_of_task == {"pvcMount": [{"mountPath": "/mnt/lab", "constant": "lab-data"}]}
    defaults = {name: d.get("defaultValue") for name, d in
                spec["root"]["inputDefinitions"]["parameters"].items()}
    assert defaults["data_root"] == "/mnt/lab/tiles"
    assert defaults["push_base"] == "/mnt/lab/serving/inception_v3"
    package = schedule.Package.read(compiled.path)
    assert package.pipeline_name == config.pipeline_name and package.mount_paths == ("/mnt/lab",)
    # a scheduled run may point at other folders of the volume, not at a pod's own disk
    assert parameters.resolve(["data.root=/mnt/lab/tiles-2026"], package.declared,
                              package.mount_paths) == {"data_root": "/mnt/lab/tiles-2026"}
    with pytest.raises(config_lib.ConfigError, match=r"data_root .*volume the package mounts "
                                                     r"\(/mnt/lab\)"):
        parameters.resolve(["data.root=/srv/tiles"], package.declared, package.mount_paths)
    # the platform spec parses as KFP's PlatformSpec
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())


@pytest.mark.parametrize("assignment, message", [
    ("lab-data", r"CLAIM:/MOUNT/PATH"),
    ("Lab_Data:/mnt/lab", r"PersistentVolumeClaim's name"),
    ("lab:mnt/lab", r"absolute, normalised path"),
    ("lab:/", r"other than /"),
    ("lab:/mnt/../lab", r"normalised"),
])
def test_a_bad_volume_is_refused_naming_it(assignment, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        targets.parse_volumes([assignment])


def test_volumes_may_not_repeat_or_nest():
    with pytest.raises(config_lib.ConfigError, match="a mount path of its own"):
        targets.parse_volumes(["a:/mnt/lab", "b:/mnt/lab/serving"])
    with pytest.raises(config_lib.ConfigError, match="each claim"):
        targets.parse_volumes(["a:/mnt/one", "a:/mnt/two"])
    assert targets.parse_volumes(["a:/mnt/lab", "b:/mnt/labels"]) == (
        targets.Volume("a", "/mnt/lab"), targets.Volume("b", "/mnt/labels"))


def test_image_check_compares_installed_versions_with_the_lock(tmp_path):
    """The image must run the Beam and Pillow the tests ran (the TFX base image has older
    ones); the check that fails its build compares them with requirements.lock."""
    from importlib import metadata

    from inception_retrain.kubeflow import image_check

    lock = REPO / "requirements.lock"
    assert image_check.version_problems(str(lock)) == []  # this environment is the lock
    stale = tmp_path / "requirements.lock"
    stale.write_text(lock.read_text().replace(f"pillow=={metadata.version('pillow')}",
                                              "pillow==10.4.0"))
    assert image_check.version_problems(str(stale)) == [
        f"pillow is {metadata.version('pillow')}, the tests ran 10.4.0 (requirements.lock)"]


def test_the_image_copies_the_beam_worker_boot_of_the_locked_beam():
    from inception_retrain.kubeflow import image_check

    beam = image_check.locked_versions(str(REPO / "requirements.lock"))["apache-beam"]
    dockerfile = (REPO / "inception_retrain" / "kubeflow" / "Dockerfile").read_text()
    assert f"COPY --from=apache/beam_python3.10_sdk:{beam} /opt/apache/beam" in dockerfile


def test_the_exit_task_runs_after_a_sub_dag_that_gets_the_root_parameters(kfp_spec, vertex_job):
    """KFP >= 2.14 (the default) and Vertex: every task inside one sub-DAG that declares the
    root's parameters and is given each of them, and the exit task after it whatever its
    outcome, with its final status; the tasks leave their records for it."""
    for spec in (kfp_spec[0], vertex_job["pipelineSpec"]):
        root = spec["root"]
        assert set(root["dag"]["tasks"]) == {node_ids.PIPELINE_DAG, node_ids.FINAL_REPORT}
        dag_task = root["dag"]["tasks"][node_ids.PIPELINE_DAG]
        sub_dag = spec["components"][dag_task["componentRef"]["name"]]
        tfx_parameters = {p.name for p in parameters.PARAMETERS}
        assert tfx_parameters <= set(sub_dag["inputDefinitions"]["parameters"])
        for name in sub_dag["inputDefinitions"]["parameters"]:
            assert dag_task["inputs"]["parameters"][name] == {"componentInputParameter": name}
        assert "Trainer" in sub_dag["dag"]["tasks"]
        exit_task = root["dag"]["tasks"][node_ids.FINAL_REPORT]
        assert exit_task["dependentTasks"] == [node_ids.PIPELINE_DAG]
        assert exit_task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
        assert exit_task["inputs"]["parameters"]["status"] == {
            "taskFinalStatus": {"producerTask": node_ids.PIPELINE_DAG}}
        assert exit_task["inputs"]["parameters"]["webhook_url"] == {
            "componentInputParameter": "webhook_url"}
        assert root["inputDefinitions"]["parameters"]["webhook_url"]["defaultValue"] == ""
        component = spec["components"][exit_task["componentRef"]["name"]]
        assert component["inputDefinitions"]["parameters"]["status"] == {
            "parameterType": "TASK_FINAL_STATUS"}
        container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        assert container["command"] == ["python", "-m", "inception_retrain.kubeflow.exit_task"]
        trainer = executor_of(spec, "Trainer")["container"]["args"]
        assert "--task_records" in trainer


def test_older_kfp_backends_get_no_exit_task_and_a_warning(compile_lib, tmp_path):
    with pytest.warns(targets.NoExitTaskWarning, match="a failed run writes no report"):
        _, spec, _ = compile_lib.compile_spec(kubeflow_config(),
                                              options(tmp_path, kfp_version="2.5"))
    assert node_ids.FINAL_REPORT not in spec["root"]["dag"]["tasks"]
    assert "Trainer" in spec["root"]["dag"]["tasks"]  # no sub-DAG
    assert "webhook_url" not in spec["root"]["inputDefinitions"]["parameters"]
    assert "--task_records" not in executor_of(spec, "Trainer")["container"]["args"]


@pytest.mark.parametrize("version, message", [
    ("1.8.5", "Kubeflow Pipelines 1.x cannot run this package"),
    ("latest", "--kfp-version expects MAJOR.MINOR")])
def test_kfp_versions_that_cannot_run_the_package_are_refused(tmp_path, version, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        targets.check(kubeflow_config(), options(tmp_path, kfp_version=version))


def test_untested_kfp_versions_are_warned_about(tmp_path):
    with pytest.warns(targets.UntestedBackendWarning, match="KFP 2.2 is not tested"):
        targets.check(kubeflow_config(), options(tmp_path, kfp_version="2.2"))
    assert not options(tmp_path, kfp_version="2.2").exit_task
    assert options(tmp_path, kfp_version="2.16.1").exit_task


def test_cli_warns_when_the_kfp_backend_runs_no_exit_task(compile_lib, tmp_path, capsys):
    from inception_retrain.cli.main import main

    out = tmp_path / "p.yaml"
    assert main(["compile", "--image", IMAGE, "--work-dir", "gs://b/w", "--data-root",
                 "gs://b/images", "--output", str(out), "--kfp-version", "2.5"]) == 0
    printed = capsys.readouterr().out
    assert "[compile] warning: KFP 2.5 does not resolve a task's final status" in printed
    assert node_ids.FINAL_REPORT not in printed.split("[compile] tasks: ", 1)[1].split("\n")[0]
    assert "# KFP backend: 2.5; no exit task" in out.read_text()
