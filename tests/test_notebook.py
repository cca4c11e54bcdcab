"""docs/backprop.ipynb runs top to bottom in a fresh kernel, and is stored without outputs."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "backprop.ipynb"


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_notebook_runs_top_to_bottom_and_draws_inline(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # nbclient raises CellExecutionError, naming the cell, at the first cell that fails
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    text = "".join(output.get("text", "") for output in outputs)
    kinds = {kind for output in outputs for kind in output.get("data", {})}
    assert "image/svg+xml" in kinds and "image/png" in kinds  # the tape, the boundary
    assert "Tape of 9 nodes" in text and "all agree" in text and "train error" in text
    assert "derivative of %0 Tanh" in text
    assert "compiled by tapegrad.compile" in text and "# backward: the sweep" in text
