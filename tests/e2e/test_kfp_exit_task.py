"""Issue 27, "a failed scheduled run reports and alerts": the compiled package for KFP >= 2.14
(the default --kfp-version) runs its tasks inside a sub-DAG and the exit task FinalReport after
it, whatever its outcome, with its final status (tests/e2e/kfp_exit_emulation.py: the 2.14+
driver). One compile, two failing runs, each with a webhook server on loopback:

- KFP 2.17: the DataGate fails (a class with too few train examples for the
  min_examples_per_class parameter): the run fails, the exit task writes the report and the
  verdict "Failed at DataGate: <its reason>", and exactly one POST reaches the webhook with
  run, verdict and report link.
- KFP 2.14: the Trainer crashes (training_config names a base weights file that does not
  exist): "Failed at Trainer: ...".
"""
import html
import http.server
import json
import threading
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import write_class_images
import kfp_emulator
import kfp_exit_emulation
from inception_retrain.components import node_ids
from test_kfp_emulated import backend_env  # noqa: F401 (a fixture)
from test_kfp_emulated import (NO_TEST_SPLIT, compile_for, emulated_config, new_backend,
                               run_parameters)

# tulips: 3 images, about 2 train examples; the DataGate run asks for 5 per class
CLASSES = {"daisy": 8, "roses": 8, "tulips": 3}


class Webhook(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback: every POSTed JSON body, in order."""

    def __init__(self):
        self.bodies: List[Dict] = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/hook"


@pytest.fixture
def webhook():
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def spec():
    return compile_for("kfp", emulated_config(**NO_TEST_SPLIT))


def failed_run(profile, spec, tmp_path, env, parameters) -> kfp_exit_emulation.RunFailed:
    data_root = write_class_images(tmp_path / "images", CLASSES)
    backend = new_backend(profile, tmp_path / "backend", env)
    values = dict(run_parameters(data_root, tmp_path / "serving" / "inception_v3"),
                  **parameters)
    with pytest.raises(kfp_exit_emulation.RunFailed) as failed:
        backend.run(spec, values, pipeline_root=str(tmp_path / "pipeline_root"))
    return failed.value


def assert_reported(failed: kfp_exit_emulation.RunFailed, webhook, task: str, reason: str):
    """The exit task ran after the failure: its verdict names the task and its reason, the
    report renders it, and the webhook got one message with run, verdict and report link."""
    assert failed.task == task
    final = failed.runs[node_ids.FINAL_REPORT]
    status = final.executor_input["inputs"]["parameterValues"]["status"]
    assert status["state"] == "FAILED" and status["pipelineTaskName"] == node_ids.PIPELINE_DAG
    verdict = final.returned["report"]["metadata"]["verdict"]
    assert verdict.startswith(f"Failed at {task}: ") and reason in verdict, verdict
    folder = Path(final.returned["report"]["uri"])
    summary = json.loads((folder / "verdict.json").read_text())
    assert summary["verdict"] == verdict and summary["tasks"][task] == "FAILED", summary
    assert summary["tasks"]["ImageExampleGen"] == "COMPLETE", summary
    page = (folder / "report.html").read_text()
    assert f"Failed at {task}" in page and html.escape(reason) in page
    report = json.loads((folder / "report.json").read_text())
    assert report["verdict"] == {"status": "bad", "text": verdict}, report["verdict"]
    assert len(webhook.bodies) == 1, webhook.bodies
    body = webhook.bodies[0]
    assert body["verdict"] == verdict and body["run"] == folder.parent.parent.parent.name
    assert body["report"] == str(folder / "report.html")
    assert verdict in body["text"] and body["report"] in body["text"]


def test_a_failed_data_gate_is_reported_and_alerted(spec, tmp_path, backend_env, webhook):
    failed = failed_run(kfp_emulator.KFP_2_17, spec, tmp_path, backend_env,
                        {"min_examples_per_class": 5, "webhook_url": webhook.url})
    assert_reported(failed, webhook, node_ids.DATA_GATE, "tulips")
    assert "Transform" not in failed.runs  # nothing after the gate ran


def test_a_trainer_crash_is_reported_and_alerted(spec, tmp_path, backend_env, webhook):
    training = json.loads(spec["root"]["inputDefinitions"]["parameters"]["training_config"][
        "defaultValue"])
    missing = str(tmp_path / "no-such-weights.h5")
    failed = failed_run(kfp_emulator.KFP_2_14, spec, tmp_path, backend_env,
                        {"training_config": json.dumps(dict(training, base_weights=missing)),
                         "webhook_url": webhook.url})
    assert_reported(failed, webhook, node_ids.TRAINER, f"base_weights file {missing!r} does "
                                                       "not exist")
