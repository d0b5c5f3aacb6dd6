"""How `predict` writes its answers: a table for a person (the default), CSV with a header, or
JSON lines, one prediction at a time as they arrive. No TensorFlow here."""
import csv
import json
from typing import IO, List

from inception_retrain.components import artifact_files
from inception_retrain.serving.client import Prediction, format_prediction

FORMATS = ("table", "csv", "jsonl")


def csv_header(k: int) -> List[str]:
    """path, class, score, then class_i and score_i for each of the top k."""
    header = ["path", "class", "score"]
    for rank in range(1, k + 1):
        header += [f"class_{rank}", f"score_{rank}"]
    return header


def csv_row(prediction: Prediction, k: int) -> List[str]:
    """One CSV row of csv_header(k); ranks past the model's classes are left empty."""
    row = [prediction.path, prediction.predicted_class, repr(prediction.score)]
    for rank in range(k):
        if rank < len(prediction.top_k):
            name, score = prediction.top_k[rank]
            row += [name, repr(score)]
        else:
            row += ["", ""]
    return row


def json_line(prediction: Prediction) -> str:
    """One JSON object: path, class, score and top_k as [{"class", "score"}, ...]."""
    return json.dumps(artifact_files.json_safe({
        "path": prediction.path, "class": prediction.predicted_class, "score": prediction.score,
        "top_k": [{"class": name, "score": score} for name, score in prediction.top_k]}),
        allow_nan=False)


class PredictionWriter:
    """Writes each prediction to stream in the chosen format (the CSV header first, before any
    row, so an empty result is still a valid CSV file)."""

    def __init__(self, stream: IO[str], output_format: str, k: int):
        if output_format not in FORMATS:
            raise ValueError(f"output format must be one of {FORMATS}, got {output_format!r}")
        self._stream, self._format, self._k = stream, output_format, k
        self.count = 0
        self._csv = csv.writer(stream, lineterminator="\n") if output_format == "csv" else None
        if self._csv is not None:
            self._csv.writerow(csv_header(k))

    def write(self, prediction: Prediction) -> None:
        """The prediction in the writer's format, flushed (a pipe reader sees it at once)."""
        if self._csv is not None:
            self._csv.writerow(csv_row(prediction, self._k))
        elif self._format == "jsonl":
            self._stream.write(json_line(prediction) + "\n")
        else:
            self._stream.write(format_prediction(prediction) + "\n")
        self._stream.flush()
        self.count += 1
