"""`inception-retrain predict`: classify image files with a model served by TF Serving, or with
a local SavedModel or TF Serving base path loaded in this process (--model; no server).

REST: POST <server>/v1/models/<name>[/versions/<v>]:predict with
  {"signature_name": "serving_default", "instances": [{"b64": "<base64 image bytes>"}, ...]};
  TF Serving decodes the b64 itself and answers {"predictions": [{"scores": [...],
  "classes": [...], "predicted_class": "..."}, ...]} or {"error": "..."}.
gRPC: PredictionService/Predict with a PredictRequest whose "images" input is a 1-D string
  tensor of the encoded bytes (tensorflow-serving-api).
The REST path imports only the standard library; gRPC loads TensorFlow for the protos.
"""
import base64
import dataclasses
import http.client
import json
import math
import os
import socket
import stat
import urllib.error
import urllib.request
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

SIGNATURE = "serving_default"     # components.features.SERVING_BYTES_SIGNATURE
INPUT = "images"                  # components.features.BYTES_INPUT
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")
DEFAULT_REST = "http://localhost:8501"
DEFAULT_GRPC = "localhost:8500"
GRPC_MAX_MESSAGE = 64 * 1024 * 1024


class PredictError(RuntimeError):
    """A request could not be made or the server refused it; the message says which."""


class UnreachableError(PredictError):
    """No TF Serving answers at the address: no point sending further batches."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One image's answer: the top class, its score, and the k best (class, score) pairs."""

    path: str
    predicted_class: str
    score: float
    top_k: List[Tuple[str, float]]


def _is_regular_file(path: str) -> bool:
    """A regular file (after symlinks): a FIFO named x.jpg would block the read forever."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def collect_images(paths: Sequence[str]) -> List[str]:
    """Files as given; folders searched recursively for image suffixes, in sorted order.
    Only regular files: pipes, sockets and devices are refused when named, skipped in folders."""
    found: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(
                os.path.join(dirpath, name)
                for dirpath, _, names in os.walk(path) for name in names
                if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
                and _is_regular_file(os.path.join(dirpath, name)))
            if not inside:
                raise PredictError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {path}")
            found.extend(inside)
        elif _is_regular_file(path):
            found.append(path)
        elif os.path.exists(path):
            raise PredictError(f"{path}: not a regular file (a pipe, socket or device)")
        else:
            raise PredictError(f"{path}: no such file or folder")
    return found


def not_an_image(data: bytes) -> bool:
    """True when the bytes start like none of the formats the model decodes."""
    return not data.startswith(_IMAGE_MAGIC)


def rest_url(server: str, model_name: str, version: Optional[int] = None) -> str:
    base = server if "://" in server else f"http://{server}"
    versioned = f"/versions/{version}" if version is not None else ""
    return f"{base.rstrip('/')}/v1/models/{model_name}{versioned}:predict"


def rest_request_body(images: Sequence[bytes], signature: str = SIGNATURE) -> bytes:
    """The exact bytes POSTed to TF Serving's :predict (row format, b64 for binary input)."""
    return json.dumps({
        "signature_name": signature,
        "instances": [{"b64": base64.b64encode(data).decode("ascii")} for data in images],
    }).encode("utf-8")


def parse_rest_response(body: bytes) -> List[Tuple[List[str], List[float]]]:
    """(class names, scores) per instance from a :predict response body."""
    try:
        answer = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        raise PredictError(f"server answered with non-JSON: {body[:200]!r}") from None
    if not isinstance(answer, dict):
        raise PredictError(f"server answered with JSON that is no object: {str(answer)[:200]}")
    if "error" in answer:
        raise PredictError(f"server error: {answer['error']}")
    if not isinstance(answer.get("predictions"), list):
        raise PredictError(f"response holds no 'predictions' list: {str(answer)[:200]}")
    rows = []
    for row in answer["predictions"]:
        try:
            classes, scores = list(row["classes"]), [float(s) for s in row["scores"]]
        except (KeyError, TypeError, ValueError):
            raise PredictError("malformed prediction (want 'classes' and numeric 'scores'): "
                               f"{str(row)[:200]}") from None
        if len(classes) != len(scores) or not classes:
            raise PredictError(f"malformed prediction: {len(classes)} classes, "
                               f"{len(scores)} scores")
        rows.append(([str(c) for c in classes], scores))
    return rows


def predict_rest(server: str, model_name: str, images: Sequence[bytes],
                 version: Optional[int] = None, timeout: float = 60.0):
    request = urllib.request.Request(
        rest_url(server, model_name, version), data=rest_request_body(images),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:  # TF Serving puts {"error": ...} in 4xx/5xx bodies
        body = err.read()
        try:
            message = json.loads(body).get("error", body.decode("utf-8", "replace"))
        except (ValueError, AttributeError):  # no JSON, or JSON that is no object
            message = body.decode("utf-8", "replace")
        raise PredictError(f"{request.full_url}: HTTP {err.code}: {message}") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, (socket.timeout, TimeoutError)):
            raise PredictError(f"{request.full_url}: no answer within {timeout:g} s") from None
        raise UnreachableError(f"cannot reach TF Serving at {request.full_url}: {err.reason}") from None
    except (socket.timeout, TimeoutError):  # connected, but the answer did not come in time
        raise PredictError(f"{request.full_url}: no answer within {timeout:g} s") from None
    except (http.client.HTTPException, ConnectionError) as err:  # dropped mid-request
        raise PredictError(f"{request.full_url}: the server closed the connection without a "
                           f"complete answer ({type(err).__name__}: {err or 'no reply'})") from None
    return parse_rest_response(body)


def grpc_request(images: Sequence[bytes], model_name: str, signature: str = SIGNATURE,
                 version: Optional[int] = None):
    """The PredictRequest sent to PredictionService/Predict."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[INPUT].CopyFrom(
        tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)]))
    return request


def parse_grpc_response(response) -> List[Tuple[List[str], List[float]]]:
    import tensorflow as tf

    classes = tf.make_ndarray(response.outputs["classes"])
    scores = tf.make_ndarray(response.outputs["scores"])
    return [([c.decode("utf-8") for c in row_classes], [float(s) for s in row_scores])
            for row_classes, row_scores in zip(classes, scores)]


def predict_grpc(target: str, model_name: str, images: Sequence[bytes],
                 version: Optional[int] = None, timeout: float = 60.0):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    options = [("grpc.max_send_message_length", GRPC_MAX_MESSAGE),
               ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(grpc_request(images, model_name, version=version),
                                    timeout=timeout)
        except grpc.RpcError as err:
            error = (UnreachableError if err.code() == grpc.StatusCode.UNAVAILABLE
                     else PredictError)
            raise error(f"gRPC {target}: {err.code().name}: {err.details()}") from None
    return parse_grpc_response(response)


def local_model_dir(path: str, version: Optional[int] = None) -> str:
    """The SavedModel a local --model names: the folder itself when it holds saved_model.pb,
    else a TF Serving base path's version (given, or the one TF Serving would serve)."""
    from inception_retrain.serving import versions

    if os.path.isfile(os.path.join(path, versions.SAVED_MODEL_FILE)):
        if version is not None:
            raise PredictError(f"{path} is one SavedModel; --version applies to a TF Serving "
                               "base path")
        return path
    if not os.path.isdir(path):
        raise PredictError(f"--model {path}: no such folder")
    chosen = version if version is not None else versions.served_version(path)
    if chosen is None:
        raise PredictError(f"--model {path}: neither a SavedModel (no saved_model.pb) nor a "
                           "TF Serving base path with a complete version folder")
    model_dir = versions.version_path(path, chosen)
    if not os.path.isfile(os.path.join(model_dir, versions.SAVED_MODEL_FILE)):
        raise PredictError(f"--model {path}: version {chosen} holds no saved_model.pb")
    return model_dir


def local_predictor(model_dir: str) -> Callable:
    """A call with predict_rest's signature and answers that runs the SavedModel's
    serving_default signature in this process (tf.saved_model.load): the same bytes in and
    the same (classes, scores) out as TF Serving's REST answer, no server needed."""
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures[SIGNATURE]

    def call(server, model_name, images: Sequence[bytes], version=None, timeout=None):
        outputs = signature(**{INPUT: tf.constant(list(images), dtype=tf.string)})
        return [([c.decode("utf-8") for c in row_classes], [float(s) for s in row_scores])
                for row_classes, row_scores in zip(outputs["classes"].numpy(),
                                                   outputs["scores"].numpy())]

    return call


def to_predictions(paths: Sequence[str], answers, k: int) -> List[Prediction]:
    """Pairs each path with its answer, ranked by score."""
    if len(answers) != len(paths):
        raise PredictError(f"sent {len(paths)} image(s), got {len(answers)} answer(s)")
    predictions = []
    for path, (classes, scores) in zip(paths, answers):
        # NaN compares false with everything, so sorting by -score put it anywhere (often
        # first); NaN scores rank last.
        ranked = sorted(zip(classes, scores), key=lambda pair: (
            math.isnan(pair[1]), 0.0 if math.isnan(pair[1]) else -pair[1]))
        predictions.append(Prediction(path, ranked[0][0], ranked[0][1], ranked[:k]))
    return predictions


def read_image(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _image_batches(paths: Iterable[str], size: int,
                   skip: Callable[[str, str], None]) -> Iterable[List[Tuple[str, bytes]]]:
    """(path, bytes) batches, each read only when the previous one has been answered: memory
    holds one batch, and the first answer comes before the last file is read."""
    batch: List[Tuple[str, bytes]] = []
    for path in paths:
        if not _is_regular_file(path):  # it changed since the listing
            skip(path, "not a regular file (a pipe, socket or device)")
            continue
        try:
            data = read_image(path)
        except OSError as err:
            skip(path, f"cannot read: {err.strerror or err}")
            continue
        if not_an_image(data):
            skip(path, "not a JPEG, PNG, GIF or BMP image")
            continue
        batch.append((path, data))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def format_prediction(prediction: Prediction) -> str:
    ranked = ", ".join(f"{name} {score:.4f}" for name, score in prediction.top_k)
    return (f"{prediction.path}\t{prediction.predicted_class}\t{prediction.score:.4f}\t"
            f"top-{len(prediction.top_k)}: {ranked}")


def run(paths: Sequence[str], protocol: str, server: Optional[str], model_name: str,
        version: Optional[int] = None, batch_size: int = 8, k: int = 3,
        emit: Callable[[Prediction], None] = lambda p: print(format_prediction(p)),
        warn: Callable[[str], None] = print, timeout: float = 60.0,
        model_path: Optional[str] = None) -> int:
    """Classifies every image, handing each answer to emit; returns 0, or 1 if any file could
    not be classified. model_path: a local SavedModel or TF Serving base path, run in this
    process instead of asking a server (local_predictor). A missing input fails before the
    model loads."""
    if batch_size < 1 or k < 1:
        raise PredictError("--batch-size and --top-k must be at least 1")
    images = collect_images(paths)
    if model_path:
        model_dir = local_model_dir(model_path, version)
        warn(f"[predict] local SavedModel {model_dir} (serving_default, no server)")
        call = local_predictor(model_dir)
    else:
        call = predict_rest if protocol == "rest" else predict_grpc
    server = server or (DEFAULT_REST if protocol == "rest" else DEFAULT_GRPC)
    failed = 0

    def skip(path: str, why: str) -> None:
        nonlocal failed
        warn(f"{path}: skipped, {why}")
        failed += 1

    for batch in _image_batches(images, batch_size, skip):
        batch_paths = [path for path, _ in batch]
        try:
            answers = call(server, model_name, [data for _, data in batch], version, timeout)
        except UnreachableError:
            raise
        except PredictError as err:
            warn(f"{', '.join(batch_paths)}: {err}")
            failed += len(batch)
            continue
        for prediction in to_predictions(batch_paths, answers, k):
            emit(prediction)
    return 1 if failed else 0
