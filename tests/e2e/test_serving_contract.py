"""The TF Serving contract of the model the pipeline pushed (the session's flowers run).

No TF Serving binary runs here. Instead, a fresh process does what TF Serving does with the
pushed version directory: loads it with TensorFlow's SavedModel loader (tag "serve", a session
over the signature's tensor names, as the C++ server does), replays the assets.extra warm-up
records, turns REST JSON (b64 decoded) and gRPC PredictRequests into tensors, and answers in
TF Serving's formats and URL scheme. The client side is serving.client over real HTTP and gRPC connections.
Run as a script, this file is that serving process.
"""
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inception_retrain.serving import versions
from inception_retrain.serving import client

SIGNATURE = "serving_default"


# ---- the serving process: python tests/e2e/test_serving_contract.py MODEL_DIR MODEL_NAME ----

def _serve(model_dir: str, model_name: str) -> None:
    """Loads the model, replays the warm-up file, then answers REST and gRPC until killed.

    Prints one JSON line first: {"rest": port, "grpc": port, "warmup": [...]}."""
    import http.server
    import re
    from concurrent import futures

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import (predict_pb2, prediction_log_pb2,
                                         prediction_service_pb2_grpc)

    session = tf.compat.v1.Session(graph=tf.Graph())
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], model_dir)

    def run_signature(name, inputs):
        signature = meta_graph.signature_def[name]
        feed = {signature.inputs[alias].name: value for alias, value in inputs.items()}
        fetch = {alias: info.name for alias, info in signature.outputs.items()}
        return session.run(fetch, feed)

    def warmup() -> list:
        """Replays assets.extra/tf_serving_warmup_requests like TF Serving at load time."""
        path = os.path.join(model_dir, "assets.extra", "tf_serving_warmup_requests")
        answered = []
        for record in tf.data.TFRecordDataset(path):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            request = log.predict_log.request
            inputs = {a: tf.make_ndarray(t) for a, t in request.inputs.items()}
            outputs = run_signature(request.model_spec.signature_name, inputs)
            answered.append({"signature": request.model_spec.signature_name,
                             "batch": len(next(iter(inputs.values()))),
                             "shapes": {k: list(v.shape) for k, v in outputs.items()}})
        return answered

    def rest(body: bytes):
        """TF Serving's row format: with one input, each instance is its value and {"b64": s}
        becomes the decoded bytes; the answer has one object per instance."""
        request = json.loads(body)
        name = request.get("signature_name", SIGNATURE)
        (alias,) = meta_graph.signature_def[name].inputs
        values = [base64.b64decode(v["b64"]) if isinstance(v, dict) else v
                  for v in request["instances"]]
        try:
            outputs = run_signature(name, {alias: np.array(values, dtype=object)})
        except tf.errors.InvalidArgumentError as err:
            return 400, {"error": err.message}
        rows = []
        for i in range(len(values)):
            row = {}
            for key, value in outputs.items():
                item = value[i]
                row[key] = (item.decode() if isinstance(item, bytes) else
                            [v.decode() if isinstance(v, bytes) else float(v) for v in item]
                            if np.ndim(item) else float(item))
            rows.append(row)
        return 200, {"predictions": rows}

    path_pattern = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")

    class RestHandler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            match = path_pattern.match(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not match or match.group(1) != model_name:
                code, answer = 404, {"error": f"Servable not found for request: {self.path}"}
            else:
                code, answer = rest(body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            if request.model_spec.name != model_name:
                context.abort(grpc.StatusCode.NOT_FOUND,
                              f"Servable not found for request: {request.model_spec.name}")
            inputs = {a: tf.make_ndarray(t) for a, t in request.inputs.items()}
            try:
                outputs = run_signature(request.model_spec.signature_name or SIGNATURE, inputs)
            except tf.errors.InvalidArgumentError as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message)
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

    warmed = warmup()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[
        ("grpc.max_receive_message_length", client.GRPC_MAX_MESSAGE)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    rest_server = http.server.HTTPServer(("127.0.0.1", 0), RestHandler)
    print(json.dumps({"rest": rest_server.server_port, "grpc": grpc_port, "warmup": warmed}),
          flush=True)
    rest_server.serve_forever()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])


# ---- the tests ----

@pytest.fixture(scope="module")
def served(flowers_run):
    """The version the pipeline pushed: (its directory, the run)."""
    push = flowers_run.summary["push"]
    assert push and push["pushed"], flowers_run.summary
    base = flowers_run.config.push_base
    assert versions.list_versions(base) == [1]
    assert push["version"] == 1 and push["destination"] == versions.version_path(base, 1)
    return versions.version_path(base, 1), flowers_run


@pytest.fixture(scope="module")
def images(served):
    """Real photos: two per class from the run's data, and a PNG re-encoding of one."""
    import tensorflow as tf

    _, run = served
    paths = [p for name in run.classes for p in sorted((run.data_root / name).iterdir())[:2]]
    data = [p.read_bytes() for p in paths]
    png = tf.io.encode_png(tf.io.decode_jpeg(data[0])).numpy()
    return paths + ["<png>"], data + [png]


@pytest.fixture(scope="module")
def server(served):
    """A fresh process serving the pushed version: {"rest": url, "grpc": target, ...}."""
    model_dir, run = served
    process = subprocess.Popen(
        [sys.executable, __file__, model_dir, run.config.model_name],
        env=dict(os.environ, TF_USE_LEGACY_KERAS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()[-3000:]
        ready = json.loads(line)
        yield {"rest": f"http://127.0.0.1:{ready['rest']}", "grpc": f"127.0.0.1:{ready['grpc']}",
               "warmup": ready["warmup"], "model_name": run.config.model_name}
    finally:
        process.terminate()
        process.wait()


@pytest.fixture(scope="module")
def in_process(served, images):
    """serving_default called directly on the pushed model in this process."""
    import tensorflow as tf

    model_dir, _ = served
    _, data = images
    outputs = tf.saved_model.load(model_dir).signatures[SIGNATURE](images=tf.constant(data))
    return {k: v.numpy() for k, v in outputs.items()}


def test_request_body_is_tf_serving_row_format(images):
    _, data = images
    body = json.loads(client.rest_request_body(data))
    assert body["signature_name"] == SIGNATURE
    assert [base64.b64decode(i["b64"]) for i in body["instances"]] == data
    assert client.rest_url("http://ts:8501", "flowers", 3) == \
        "http://ts:8501/v1/models/flowers/versions/3:predict"


def test_rest_answers_match_in_process_prediction(server, in_process, images, served):
    _, run = served
    paths, data = images
    answers = client.predict_rest(server["rest"], server["model_name"], data)
    assert len(answers) == len(paths)
    classes = [c.decode() for c in in_process["classes"][0]]
    assert sorted(classes) == sorted(run.classes)
    for (answer_classes, answer_scores), scores in zip(answers, in_process["scores"]):
        assert answer_classes == classes
        np.testing.assert_allclose(answer_scores, scores, rtol=1e-5, atol=1e-6)
        assert abs(sum(answer_scores) - 1) < 1e-4
    predictions = client.to_predictions([str(p) for p in paths], answers, k=2)
    assert [p.predicted_class for p in predictions] == \
        [c.decode() for c in in_process["predicted_class"]]
    assert all(len(p.top_k) == 2 and p.top_k[0] == (p.predicted_class, p.score)
               for p in predictions)


def test_grpc_answers_match_in_process_prediction(server, in_process, images):
    _, data = images
    answers = client.predict_grpc(server["grpc"], server["model_name"], data)
    np.testing.assert_allclose([s for _, s in answers], in_process["scores"], rtol=1e-5,
                               atol=1e-6)
    assert [c for c, _ in answers] == [[c.decode() for c in row]
                                       for row in in_process["classes"]]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_bytes_that_are_no_image_get_a_clear_error_and_serving_goes_on(server, images,
                                                                      protocol):
    _, data = images
    call = client.predict_rest if protocol == "rest" else client.predict_grpc
    with pytest.raises(client.PredictError,
                       match=r"not a JPEG, PNG, GIF or BMP image.*\[1\]"):
        call(server[protocol], server["model_name"], [data[0], b"no image", data[1]])
    assert len(call(server[protocol], server["model_name"], data[:1])) == 1


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_unknown_model_name_is_reported(server, images, protocol):
    _, data = images
    call = client.predict_rest if protocol == "rest" else client.predict_grpc
    with pytest.raises(client.PredictError, match="Servable not found"):
        call(server[protocol], "no_such_model", data[:1])


def test_warmup_records_are_answered(server, served):
    _, run = served
    answered = server["warmup"]
    assert [a["batch"] for a in answered] == [1, 8]
    for a in answered:
        assert a["signature"] == SIGNATURE
        assert a["shapes"]["scores"] == [a["batch"], len(run.classes)]
        assert a["shapes"]["predicted_class"] == [a["batch"]]


def test_pushed_version_is_complete_and_recorded(served):
    model_dir, run = served
    names = set(os.listdir(model_dir))
    assert {"saved_model.pb", "variables", "assets.extra"} <= names
    record = versions.read_push_record(run.config.push_base, 1)
    assert record["version"] == 1 and "Trainer" in record["source"]
    labels = Path(model_dir, "assets.extra", "labels.txt").read_text().split()
    assert sorted(labels) == sorted(run.classes)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_predict_command_on_a_folder(server, served, tmp_path, capsys, protocol):
    from inception_retrain.cli import main as cli

    _, run = served
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in run.classes:
        source = sorted((run.data_root / name).iterdir())[0]
        (folder / f"{name}.jpg").write_bytes(source.read_bytes())
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    (folder / "fake.jpg").write_text("not really a JPEG")

    code = cli.main(["predict", str(folder), "--protocol", protocol, "--server",
                     server[protocol], "--model-name", server["model_name"],
                     "--batch-size", "2", "--top-k", "2"])

    captured = capsys.readouterr()
    assert code == 1, "a skipped file makes the exit code 1"
    assert f"{folder / 'fake.jpg'}: skipped, not a JPEG, PNG, GIF or BMP image" in captured.err
    lines = captured.out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == \
        [str(folder / f"{name}.jpg") for name in sorted(run.classes)]
    for line in lines:
        _, predicted, score, ranked = line.split("\t")
        assert predicted in run.classes and 0 <= float(score) <= 1
        assert ranked.startswith(f"top-2: {predicted} {score}, ")


def test_predict_command_reports_unreachable_server(served, capsys):
    from inception_retrain.cli import main as cli

    _, run = served
    image = sorted((run.data_root / run.classes[0]).iterdir())[0]
    code = cli.main(["predict", str(image), "--server", "http://127.0.0.1:9",
                     "--model-name", run.config.model_name])
    assert code == 1
    assert "cannot reach TF Serving at http://127.0.0.1:9/v1/models/" in capsys.readouterr().err
