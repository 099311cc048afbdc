"""The reference-table lookup finds shared/ beside any checkout, and honours the override."""
from __future__ import annotations

from accelsim import reference_data
from accelsim.reference_data import ENV_VAR, reference_dir


def test_override_points_at_a_shared_folder(tmp_path, monkeypatch):
    (tmp_path / "reference" / "fusemax").mkdir(parents=True)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert reference_dir("fusemax") == tmp_path / "reference" / "fusemax"


def test_missing_tables_are_none_not_a_made_up_path(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    monkeypatch.setattr(reference_data, "Path", lambda *a: tmp_path.joinpath("nowhere", *map(str, a)))
    assert reference_dir("no-such-table") is None
