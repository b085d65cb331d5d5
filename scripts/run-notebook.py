"""Execute a notebook headless and print what its cells print.

    python scripts/run-notebook.py notebooks/how-to-redispatch.ipynb [--out DIR]

Runs every cell in a fresh kernel of this Python (nbclient), with the
notebook's own folder as the working directory, prints each cell's text
output as it would read in Jupyter, and writes the executed notebook to
build/notebooks/ so it can be opened (with outputs) in JupyterLab. Exits 1,
showing the traceback, when a cell raises.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/notebooks"),
                        help="where the executed copy goes (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds one cell may take (default: %(default)s)")
    args = parser.parse_args(argv)

    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=args.timeout,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(args.notebook.parent.resolve())}},
    )

    print(f"Executing {args.notebook} ...", flush=True)
    started = time.perf_counter()
    failed: CellExecutionError | None = None
    try:
        client.execute()
    except CellExecutionError as error:
        failed = error
    elapsed = time.perf_counter() - started

    print_outputs(nb)

    args.out.mkdir(parents=True, exist_ok=True)
    executed = args.out / args.notebook.name
    nbformat.write(nb, executed)
    if failed is not None:
        print(f"\nFAILED after {elapsed:.1f} s; partial notebook in {executed}", file=sys.stderr)
        print(failed, file=sys.stderr)
        return 1
    print(f"\nDone in {elapsed:.1f} s; executed notebook: {executed}")
    return 0


def print_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        count = cell.get("execution_count") or " "
        print(f"\nIn [{count}]:")
        print(textwrap.indent(cell.source.rstrip(), "    "))
        for output in cell.get("outputs", []):
            text = output_text(output)
            if text:
                print(text.rstrip("\n"))


def output_text(output) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
