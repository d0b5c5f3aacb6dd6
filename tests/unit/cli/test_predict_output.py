"""Issue 26: `predict -o csv|jsonl [--output FILE]` writes machine-readable answers: CSV with a
header (path, class, score, then the top k) or one JSON object per line; the table stays the
default. Driven through the CLI against a local HTTP server that answers as TF Serving does."""
import csv
import http.server
import io
import json
import threading

import pytest

from inception_retrain.cli import predict_output
from inception_retrain.cli.main import main
from inception_retrain.serving.client import Prediction

JPEG = b"\xff\xd8\xff" + b"\x00" * 16


@pytest.fixture
def rest_server():
    """Answers every :predict with three classes, the same scores for each image."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answer = json.dumps({"predictions": [
                {"classes": ["a", "b", "c"], "scores": [0.1, 0.7, 0.2]}
                for _ in body["instances"]]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("x.jpg", "y.jpg"):
        (folder / name).write_bytes(JPEG)
    return folder


def test_csv_has_a_header_and_one_row_per_image(rest_server, images, tmp_path, capsys):
    out = tmp_path / "answers.csv"
    assert main(["predict", str(images), "--server", rest_server, "--top-k", "2",
                 "-o", "csv", "--output", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["path", "class", "score", "class_1", "score_1", "class_2", "score_2"]
    assert rows[1:] == [[str(images / name), "b", "0.7", "b", "0.7", "c", "0.2"]
                        for name in ("x.jpg", "y.jpg")]
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"2 prediction(s) written to {out}" in captured.err


def test_json_lines_on_stdout(rest_server, images, capsys):
    assert main(["predict", str(images / "x.jpg"), "--server", rest_server, "-o", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{
        "path": str(images / "x.jpg"), "class": "b", "score": 0.7,
        "top_k": [{"class": "b", "score": 0.7}, {"class": "c", "score": 0.2},
                  {"class": "a", "score": 0.1}]}]


def test_the_table_stays_the_default(rest_server, images, capsys):
    assert main(["predict", str(images / "y.jpg"), "--server", rest_server]) == 0
    assert capsys.readouterr().out == (f"{images / 'y.jpg'}\tb\t0.7000\t"
                                       "top-3: b 0.7000, c 0.2000, a 0.1000\n")


def test_nan_scores_are_json_null_and_missing_ranks_empty_csv_cells():
    nan = Prediction("p.jpg", "a", float("nan"), [("a", float("nan"))])
    assert json.loads(predict_output.json_line(nan))["top_k"] == [{"class": "a", "score": None}]
    stream = io.StringIO()
    writer = predict_output.PredictionWriter(stream, "csv", 2)
    writer.write(Prediction("p.jpg", "a", 0.9, [("a", 0.9)]))
    assert stream.getvalue().splitlines()[1] == "p.jpg,a,0.9,a,0.9,,"


def test_an_empty_csv_still_has_its_header():
    stream = io.StringIO()
    predict_output.PredictionWriter(stream, "csv", 1)
    assert stream.getvalue() == "path,class,score,class_1,score_1\n"
