"""Issue 16, item 2: which SavedModel `predict --model` loads (no TensorFlow needed here)."""
import pytest

from inception_retrain.serving import client


def _version(base, number):
    (base / str(number) / "variables").mkdir(parents=True)
    (base / str(number) / "saved_model.pb").write_bytes(b"x")
    return base / str(number)


def test_a_saved_model_folder_is_taken_as_it_is(tmp_path):
    model = _version(tmp_path / "base", 3)
    assert client.local_model_dir(str(model)) == str(model)
    with pytest.raises(client.PredictError, match="--version applies to a TF Serving base"):
        client.local_model_dir(str(model), 2)


def test_a_base_path_gives_the_version_tf_serving_would_serve(tmp_path):
    base = tmp_path / "base"
    _version(base, 1), _version(base, 4)
    (base / "model_cards").mkdir()
    assert client.local_model_dir(str(base)).rstrip("/").endswith("/4")
    assert client.local_model_dir(str(base), 1).rstrip("/").endswith("/1")


def test_neither_is_named(tmp_path):
    with pytest.raises(client.PredictError, match="no such folder"):
        client.local_model_dir(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(client.PredictError, match="neither a SavedModel"):
        client.local_model_dir(str(tmp_path / "empty"))
