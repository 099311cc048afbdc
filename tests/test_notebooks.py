"""Every notebook in notebooks/ runs top to bottom (small settings).

Notebooks read ``ACCELSIM_NOTEBOOK_SMALL=1`` to shrink their sweeps; the kernel gets this
worktree on PYTHONPATH so it imports the code under test, not another installed copy, and runs in
a temporary directory so nothing it writes lands in the repository.

``python tests/test_notebooks.py [NAME ...]`` executes notebooks in place at full size, with
outputs, which is how the committed copies are produced.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def execute(path: Path, cwd: Path, small: bool, timeout_s: int = 600):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg", "ACCELSIM_NOTEBOOK_SMALL": "1" if small else "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = execute(path, tmp_path, small=True)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


if __name__ == "__main__":
    import nbformat

    wanted = set(sys.argv[1:])
    for nb_path in NOTEBOOKS:
        if wanted and nb_path.stem not in wanted:
            continue
        print(f"executing {nb_path.name} ...", flush=True)
        done = execute(nb_path, nb_path.parent, small=False)
        nbformat.write(done, nb_path)
