"""The grapheme-to-phoneme benchmark's whole path at a tiny size: CMUdict export (stress removed,
odd words dropped, every pronunciation a line), the split by word, training and decoding through
the public commands, word and phone error rates."""
import importlib.util
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def g2p():
    spec = importlib.util.spec_from_file_location("g2p_cmudict", os.path.join(HERE, "..", "benchmarks", "g2p_cmudict.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f]


def test_export_removes_stress_and_splits_by_word(g2p, tmp_path):
    entries = {"read": [["R", "IY1", "D"], ["R", "EH1", "D"]], "record": [["R", "EH1", "K", "ER0", "D"],
                                                                      ["R", "EH2", "K", "ER0", "D"]],
               "a.m.": [["EY2", "EH1", "M"]], "o'neil": [["OW0", "N", "IY1", "L"]], "x-ray": [["EH1", "K", "S"]]}
    entries.update({f"w{'abcdefghij'[k]}": [["W", "AH0"]] for k in range(10)})
    info = g2p.export(tmp_path, test_fraction=0.2, valid_fraction=0.1, entries=entries)
    assert info["dropped_words"] == 2 and info["dropped_duplicates"] == 1 and info["words"] == 13
    rows = {name: _read(info[name]["path"]) for name in ("train", "valid", "test")}
    words = {name: {w for w, _ in r} for name, r in rows.items()}
    assert not (words["train"] & words["test"] or words["train"] & words["valid"] or words["valid"] & words["test"])
    assert [len(words[n]) for n in ("train", "valid", "test")] == [9, 1, 3]
    every = [r for n in rows for r in rows[n]]
    assert sorted(p for w, p in every if w == "read") == ["R EH D", "R IY D"]
    assert [p for w, p in every if w == "record"] == ["R EH K ER D"] and ["o'neil", "OW N IY L"] in every


def test_cmudict_path_end_to_end(g2p, tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    res = g2p.main(["--limit", "300", "--minutes", "0.5", "--steps", "20", "--points", "1", "--hidden-size", "8",
                    "--embed-size", "4", "--batch-size", "16", "--eval-every", "10", "--work", str(work),
                    "--results", str(results)])
    assert res["data"]["words"] == 300 and res["data"]["test"]["words"] == 30 and res["steps"] == 20
    final = res["curve"][-1]
    assert final["step"] in (10, 20) and final["words"] == 30
    assert 0 <= final["wer"] <= 100 and 0 <= final["per"]
    scores = json.loads((work / "run" / "snapshots" / "final" / "scores.json").read_text())
    assert final["wer"] == pytest.approx(100 * (1 - scores["exact_match"]))
    hyp = (work / "run" / "snapshots" / "final" / "hyp.txt").read_text().splitlines()
    assert len(hyp) == res["data"]["test"]["pairs"]
    assert json.loads((results / "g2p_cmudict.json").read_text())["curve"] == res["curve"]
    assert "| training time (min) | step | WER % | PER % |" in (results / "g2p_cmudict.md").read_text()
