"""The file-access layer (components/artifact_files.py) on a real S3-compatible server on
loopback: moto in server mode, reached by TensorFlow's gfile through tensorflow-io's s3://
filesystem. What the pipeline writes there is read back by boto3 (an independent client), and
what boto3 puts there is read by the layer.

tensorflow-io 0.37.1 (the newest release, for TF 2.16) aborts every process that used s3:// at
interpreter exit ("pure virtual method called", exit code 134; tensorflow/io#2039, fixed on
master by #2120, not released). The layer runs in a child process that leaves through os._exit
after printing its result, so the known teardown abort is not mistaken for the layer's result.

The compiled pipeline also runs once under the KFP emulator (tests/e2e/kfp_emulator.py, profile
kfp-2.17) with its pipeline root s3://<bucket>/root on this server: the emulated launcher
downloads each input from the server to the pod's /s3/<bucket>/... and uploads the outputs
back with boto3 (launcher_v2.go localPathForURI, downloadArtifacts, uploadOutputArtifacts), TFX
reads and writes those local copies (kubeflow/entrypoint.py). boto3 then finds the report and
the pushed model in the bucket."""
import json
import os
import re
import subprocess
import sys
import threading
import uuid

import pytest

import kfp_emulator
from test_kfp_emulated import (CLASSES, NO_TEST_SPLIT, assert_contract, assert_no_pod_copies_left,
                               assert_run, compile_for, emulated_config, new_backend,
                               run_parameters)
from conftest import write_class_images

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

_LAYER_SCRIPT = r"""
import json, os, sys
from inception_retrain.components import artifact_files as files
root = sys.argv[1]
with files.open_text(root + "/written/report.html", "w") as f:
    f.write("<h1>Blessed and pushed as version 1</h1>")
result = {"exists": files.exists(root + "/placed/stats.json"),
          "missing": files.exists(root + "/placed/none.json"),
          "isdir": files.isdir(root + "/placed"),
          "json": files.read_json(root + "/placed/stats.json"),
          "absent": files.read_text(root + "/placed/none.json"),
          "glob": files.glob(root + "/placed/*.json")}
print("RESULT " + json.dumps(result), flush=True)
os._exit(0)  # past tensorflow-io's teardown abort (tensorflow/io#2039)
"""


@pytest.fixture
def s3_server():
    """moto's S3 server on a free loopback port; yields the env that points clients at it."""
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        endpoint = None
        for line in proc.stdout:
            found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                endpoint = found.group(1)
                break
        assert endpoint, "moto server did not start"
        # it logs every request: read on, or a full pipe stops the server mid-run
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
               "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_file_layer_reads_and_writes_an_s3_store(s3_server, env_with_legacy_keras):
    s3 = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"],
                      region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="runs")
    s3.put_object(Bucket="runs", Key="root/placed/stats.json", Body=b'{"daisy": 8}')
    env = dict(env_with_legacy_keras, TF_CPP_MIN_LOG_LEVEL="3", **s3_server)
    proc = subprocess.run([sys.executable, "-c", _LAYER_SCRIPT, "s3://runs/root"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:]
    result = json.loads(lines[0][len("RESULT "):])
    assert result == {"exists": True, "missing": False, "isdir": True, "json": {"daisy": 8},
                      "absent": None, "glob": ["s3://runs/root/placed/stats.json"]}
    written = s3.get_object(Bucket="runs", Key="root/written/report.html")["Body"].read()
    assert written == b"<h1>Blessed and pushed as version 1</h1>"


def _client(server):
    return boto3.client("s3", endpoint_url=server["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _keys(s3, uri: str):
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return {item["Key"][len(prefix) + 1:] for page in pages for item in page.get("Contents", [])}


def test_the_compiled_pipeline_runs_with_an_s3_pipeline_root(s3_server, env_with_legacy_keras,
                                                             tmp_path):
    """One night under KFP 2.17 (the newest release: outputFile inside the local copy of the task
    root, /s3/..., and the user container without capabilities), every artifact on the S3 server:
    version 1 pushed, and the report and the pushed model are objects in the bucket."""
    s3, bucket = _client(s3_server), f"emulated-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    spec = compile_for("kfp", emulated_config(**NO_TEST_SPLIT))
    env = dict(env_with_legacy_keras, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONWARNINGS="ignore", **s3_server)
    backend = new_backend(kfp_emulator.KFP_2_17, tmp_path / "backend", env)
    data_root = write_class_images(tmp_path / "images", CLASSES)
    push_base = tmp_path / "serving" / "inception_v3"  # a volume: the push stays a local path
    runs = backend.run(spec, run_parameters(data_root, push_base),
                       pipeline_root=f"s3://{bucket}/root")
    assert_run(spec, runs, push_base, version=1, backend=backend)
    assert_contract(kfp_emulator.KFP_2_17, runs, backend)
    assert_no_pod_copies_left(runs)
    for name, task in runs.items():
        for output, artifact in task.outputs.items():
            assert artifact.uri.startswith(f"s3://{bucket}/root/"), (name, output, artifact.uri)
    report = runs["RunReporter"].outputs["report"].uri
    assert {"report.html", "report.json"} <= _keys(s3, report), sorted(_keys(s3, report))
    key = report[len(f"s3://{bucket}/"):]
    html = s3.get_object(Bucket=bucket, Key=f"{key}/report.html")["Body"].read().decode()
    assert "Blessed and pushed as version 1" in html
    # The Pusher's artifact is metadata only; the model it pushed is the Trainer's, in the bucket
    pushed = runs["Pusher"].executor_input["inputs"]["artifacts"]["model"]["artifacts"][0]["uri"]
    model = _keys(s3, pushed)
    assert {"Format-Serving/saved_model.pb", "Format-Serving/variables/variables.index"} <= model, (
        sorted(model))
