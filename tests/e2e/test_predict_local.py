"""Issue 16, item 2: `predict --model` runs a local SavedModel or TF Serving base path in this
process (serving_default, no server) and prints what the REST path prints for the same files
(the REST answers from the TF Serving stand-in of test_serving_contract)."""
from inception_retrain.cli import main as cli
from test_serving_contract import served, server  # noqa: F401 (fixtures)


def _lines(out: str):
    rows = []
    for line in out.strip().splitlines():
        path, predicted, score, ranked = line.split("\t")
        rows.append((path, predicted, float(score), ranked.split(": ", 1)[1]))
    return rows


def _folder(run, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in run.classes:
        for source in sorted((run.data_root / name).iterdir())[:2]:
            (folder / f"{name}-{source.name}").write_bytes(source.read_bytes())
    return folder


def test_local_base_path_and_saved_model_answer_as_the_rest_path(server, served, tmp_path,
                                                                  capsys):
    model_dir, run = served
    folder = _folder(run, tmp_path)
    common = ["--batch-size", "3", "--top-k", "3"]
    assert cli.main(["predict", str(folder), "--server", server["rest"], "--model-name",
                     server["model_name"], *common]) == 0
    rest = _lines(capsys.readouterr().out)
    assert len(rest) == 2 * len(run.classes)
    for model in (run.config.push_base, model_dir):
        assert cli.main(["predict", str(folder), "--model", str(model), *common]) == 0
        captured = capsys.readouterr()
        assert "(serving_default, no server)" in captured.err
        local = _lines(captured.out)
        assert [(p, c) for p, c, _, _ in local] == [(p, c) for p, c, _, _ in rest], model
        for (_, _, a, ranked_a), (_, _, b, ranked_b) in zip(local, rest):
            assert abs(a - b) <= 1e-4
            assert [x.rsplit(" ", 1)[0] for x in ranked_a.split(", ")] == \
                [x.rsplit(" ", 1)[0] for x in ranked_b.split(", ")]


def test_local_base_path_takes_a_version(served, tmp_path, capsys):
    _, run = served
    image = sorted((run.data_root / run.classes[0]).iterdir())[0]
    assert cli.main(["predict", str(image), "--model", run.config.push_base,
                     "--version", "1"]) == 0
    assert "/1 (serving_default" in capsys.readouterr().err
    assert cli.main(["predict", str(image), "--model", run.config.push_base,
                     "--version", "99"]) == 1
    assert "version 99 holds no saved_model.pb" in capsys.readouterr().err
