"""Issue 13, items 11 and 12: the predict client against a server that drops the connection,
answers too late or answers malformed JSON (one `predict error` line per batch, no traceback),
NaN scores, a FIFO named *.jpg, and images read batch by batch."""
import http.server
import json
import math
import os
import threading

import pytest

from inception_retrain.serving import client

JPEG = b"\xff\xd8\xff" + b"\x00" * 16
GOOD = {"predictions": [{"classes": ["a", "b"], "scores": [0.2, 0.8]}]}


@pytest.fixture
def server():
    """A local HTTP server whose answer to :predict each test sets: a body, 'drop' (close the
    connection without a reply) or 'slow' (answer after the client's timeout)."""
    behaviour = {"answer": json.dumps(GOOD).encode()}
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            answer = behaviour["answer"]
            if answer == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if answer == "slow":
                release.wait(5)
                answer = json.dumps(GOOD).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield behaviour, f"http://127.0.0.1:{httpd.server_address[1]}"
    release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("answer, expected", [
    ("drop", "the server closed the connection without a complete answer"),
    ("slow", "no answer within 0.5 s"),
    (b"<html>oops</html>", "server answered with non-JSON"),
    (b"\xff\xfe", "server answered with non-JSON"),
    (b"[1, 2]", "JSON that is no object"),
    (b'{"predictions": 3}', "no 'predictions' list"),
    (b'{"predictions": [{"classes": ["a"]}]}', "malformed prediction"),
    (b'{"predictions": [{"classes": ["a"], "scores": ["x"]}]}', "malformed prediction"),
    (b'{"predictions": [{"classes": ["a", "b"], "scores": [1]}]}', "1 scores"),
])
def test_a_broken_server_answer_is_a_predict_error(server, answer, expected):
    """Item 11: these were tracebacks (RemoteDisconnected, socket.timeout, KeyError...)."""
    behaviour, url = server
    behaviour["answer"] = answer
    with pytest.raises(client.PredictError, match=expected):
        client.predict_rest(url, "m", [JPEG], timeout=0.5)


def test_the_cli_prints_one_line_per_failed_batch_and_exits_1(server, tmp_path, capsys):
    """Item 11: through `inception-retrain predict`, a dropped connection is one line."""
    behaviour, url = server
    behaviour["answer"] = "drop"
    (tmp_path / "x.jpg").write_bytes(JPEG)
    from inception_retrain.cli import main as cli

    assert cli.main(["predict", str(tmp_path / "x.jpg"), "--server", url]) == 1
    err = capsys.readouterr().err
    assert "the server closed the connection" in err and "Traceback" not in err


def test_nan_scores_rank_last():
    """Item 12: NaN scores were ranked first (NaN compares false with everything)."""
    nan = float("nan")
    [prediction] = client.to_predictions(["x.jpg"], [(["a", "b", "c"], [nan, 0.3, 0.7])], k=3)
    assert prediction.predicted_class == "c" and prediction.score == 0.7
    assert [c for c, _ in prediction.top_k] == ["c", "b", "a"]
    assert math.isnan(prediction.top_k[-1][1])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_jpg_is_skipped_in_folders_and_refused_by_name(server, tmp_path):
    """Item 12: a FIFO named *.jpg hung the client (open() waits for a writer)."""
    behaviour, url = server
    (tmp_path / "real.jpg").write_bytes(JPEG)
    os.mkfifo(tmp_path / "pipe.jpg")
    assert client.collect_images([str(tmp_path)]) == [str(tmp_path / "real.jpg")]
    with pytest.raises(client.PredictError, match="not a regular file"):
        client.collect_images([str(tmp_path / "pipe.jpg")])
    lines, done = [], threading.Event()
    worker = threading.Thread(target=lambda: (lines.append(client.run(
        [str(tmp_path)], "rest", url, "m", emit=lines.append, warn=lines.append)),
        done.set()), daemon=True)
    worker.start()
    assert done.wait(30), "the client hung"
    assert lines[-1] == 0 and client.format_prediction(lines[0]).startswith(
        str(tmp_path / "real.jpg") + "\tb\t0.8000")


def test_images_are_read_one_batch_at_a_time(tmp_path, monkeypatch):
    """Item 12: every image was read into memory before the first request."""
    events = []
    paths = []
    for i in range(5):
        (tmp_path / f"{i}.jpg").write_bytes(JPEG)
        paths.append(str(tmp_path / f"{i}.jpg"))
    real_read = client.read_image
    monkeypatch.setattr(client, "read_image",
                        lambda path: events.append(f"read {os.path.basename(path)}")
                        or real_read(path))

    def fake_predict(server, model, images, version, timeout):
        events.append(f"request {len(images)}")
        return [(["a", "b"], [0.4, 0.6])] * len(images)

    monkeypatch.setattr(client, "predict_rest", fake_predict)
    assert client.run(paths, "rest", None, "m", batch_size=2, emit=lambda line: None) == 0
    assert events == ["read 0.jpg", "read 1.jpg", "request 2", "read 2.jpg", "read 3.jpg",
                      "request 2", "read 4.jpg", "request 1"]
