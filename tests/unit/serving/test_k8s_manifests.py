"""inception_retrain/serving/k8s/: the Kubernetes manifests agree with each other and with the
pipeline.

Parses the files (no cluster here): the TF Serving model config as TF Serving's own proto, the
YAML as Kubernetes objects, and checks the names, ports and paths that must line up.
"""
from pathlib import Path

import pytest
import yaml

from inception_retrain.pipeline import config as config_lib

SERVING = Path(__file__).resolve().parents[3] / "inception_retrain" / "serving" / "k8s"


def _load(name):
    with open(SERVING / name) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def manifests():
    kustomization = _load("kustomization.yaml")
    objects = {}
    for name in kustomization["resources"]:
        obj = _load(name)
        objects[obj["kind"]] = obj
    return kustomization, objects


@pytest.fixture(scope="module")
def model_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse((SERVING / "models.config").read_text(),
                             model_server_config_pb2.ModelServerConfig())


def _container(objects):
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _args(container):
    return dict(arg[2:].split("=", 1) for arg in container["args"])


def test_model_config_serves_the_pipeline_model_by_latest_version(model_config):
    (model,) = model_config.model_config_list.config
    assert model.name == config_lib.PipelineConfig().model_name
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 1


def test_deployment_reads_the_push_destination(manifests, model_config):
    kustomization, objects = manifests
    container = _container(objects)
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (model,) = model_config.model_config_list.config

    models_mount = mounts["models"]["mountPath"]
    assert model.base_path == f"{models_mount}/{model.name}"
    assert mounts["models"]["readOnly"] is True
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert claim == objects["PersistentVolumeClaim"]["metadata"]["name"]
    assert "ReadWriteMany" in objects["PersistentVolumeClaim"]["spec"]["accessModes"]

    config_map = volumes["config"]["configMap"]["name"]
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == config_map and generator["files"] == ["models.config"]
    args = _args(container)
    assert args["model_config_file"] == f"{mounts['config']['mountPath']}/models.config"
    assert args["enable_model_warmup"] == "true"


def test_ports_probe_and_service_line_up(manifests, model_config):
    _, objects = manifests
    container = _container(objects)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = _args(container)
    assert ports == {"grpc": int(args["port"]), "http": int(args["rest_api_port"])}
    (model,) = model_config.model_config_list.config
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": f"/v1/models/{model.name}", "port": "http"}
    service = objects["Service"]["spec"]
    assert service["selector"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]
    assert {p["targetPort"] for p in service["ports"]} == set(ports)
    assert {p["name"]: p["port"] for p in service["ports"]} == ports


def test_image_matches_the_serving_api_release(manifests):
    from importlib.metadata import version

    _, objects = manifests
    image = _container(objects)["image"]
    assert image == f"tensorflow/serving:{version('tensorflow-serving-api')}"
