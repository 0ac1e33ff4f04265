import pytest
import torch

from studylib.training.memo import memo, memo_path


def test_memo_computes_once_per_key_and_recomputes_unreadable_files(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3.0) + len(calls)}

    first = memo("demo", {"a": 1}, compute)
    again = memo("demo", {"a": 1}, compute)
    other = memo("demo", {"a": 2}, compute)
    assert len(calls) == 2
    assert torch.equal(first["x"], again["x"]) and not torch.equal(first["x"], other["x"])

    memo_path("demo", {"a": 1}).write_bytes(b"not a tensor file")
    with pytest.warns(UserWarning, match="recomputing"):
        redone = memo("demo", {"a": 1}, compute)
    assert len(calls) == 3 and torch.equal(redone["x"], torch.arange(3.0) + 3)
