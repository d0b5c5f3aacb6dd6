"""Issue 28's bar: nine synthetic whole-slide images (three classes x three, 4096 x 3072 px at
0.5 um/px, tissue on about 5 % of each) under <class>/<slide>.tiff through `inception-retrain run`:
at least 45 tile examples split by slide (no slide in two splits), the data report counting the
background tiles skipped; then `predict --model <served dir> <slide> --heatmap` on the pushed
model."""
import glob
import json

from inception_retrain.cli import main as cli
from slide_writer import class_slides


def test_slides_to_a_pushed_model_and_a_heatmap(tmp_path, capsys):
    data, work = tmp_path / "data", tmp_path / "work"
    expected = class_slides(data)
    settings = ["data.min_examples_per_class=1", "data.train_percent=34",
                "data.eval_percent=33", "data.test_percent=33", "training.image_size=75",
                "training.phase1_epochs=1", "training.phase2_epochs=0",
                "evaluation.accuracy_floor=0.0", "evaluation.min_eval_examples_per_class=1",
                "evaluation.min_eval_groups_per_class=1"]
    code = cli.main(["run", "--data-root", str(data), "--work-dir", str(work), "--base-weights",
                     "none", "--report-examples", "0"]
                    + [arg for s in settings for arg in ("--set", s)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    [facts_path] = glob.glob(f"{work}/pipeline_root/**/data_facts.json", recursive=True)
    with open(facts_path) as f:
        facts = json.load(f)
    assert sum(sum(c.values()) for c in facts["class_counts"].values()) == expected >= 45
    assert facts["split"]["grouped"] is True and facts["split"]["groups"] == 9
    assert facts["leakage"]["groups_in_several_splits_count"] == 0
    assert [a["background_skipped"] for a in facts["slides"]] == [16 * 12 - 10] * 9
    with open(facts["report"]) as f:
        assert "## Whole-slide images (9)" in f.read()
    serving = glob.glob(f"{work}/serving/*/*/saved_model.pb")
    assert serving, "no pushed model"
    base = serving[0].rsplit("/", 2)[0]
    heat = tmp_path / "heat.png"
    assert cli.main(["predict", "--model", base, str(data / "a" / "a0.tiff"),
                     "--heatmap", str(heat)]) == 0
    line = capsys.readouterr().out.strip().split("\t")
    assert line[0].endswith("a0.tiff") and line[2] == "10" and line[1] in ("a", "b", "c")
    assert heat.stat().st_size > 0
