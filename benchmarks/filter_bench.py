"""``rewardkit filter`` in constant memory: a million short synthetic rows, local engine, a tiny model.

Run: ``.venv/bin/python benchmarks/filter_bench.py [--rows 1000000] [--keep top:20%] [--min-margin M]``

The rows: ``--rows`` (prompt, response) lines, four responses per prompt, prompts interleaved (a prompt's
rows are never contiguous), written as JSONL. The model: a random 2-layer BERT of hidden size 32 (the one the
tests build): the benchmark measures the filter's passes and memory, not a model. Printed beside the CPU:
rows/s, the rows kept, and peak RSS (target: well under 2 GB; it grows by 16 bytes a row for the selection
arrays, the rest is a scoring chunk). The same run on 100,000 rows is printed first, so the growth per row
shows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' tiny model (rk_testing)


def write_rows(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps({"prompt": f"question {i % (n // 4 or 1)}", "response": f"answer {i} is {i % 97}"}) + "\n"
            )


def run_once(model: Path, rows: int, keep: str | None, margin: str | None, tmp: Path) -> dict:
    """One ``rewardkit filter`` in a fresh process (so its peak RSS is its own)."""
    data = tmp / f"rows-{rows}.jsonl"
    write_rows(data, rows)
    out = tmp / f"kept-{rows}.jsonl"
    what = ["--keep", keep] if keep else ["--min-margin", margin or "0"]
    argv = ["filter", str(data), "-m", str(model), "-o", str(out), *what, "--dtype", "fp32", "--json", "--threads", "1"]
    # the command in a child that prints its own peak RSS as it exits (sys.argv[0] is "-c": typer reads the rest)
    code = (
        "import resource, sys\n"
        "import rewardkit.cli.main as m\n"
        "try:\n    m.run()\nfinally:\n"
        "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=_env())
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    manifest = json.loads(done.stdout)
    peak_kb = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")))
    return {"rows": rows, "kept": manifest["written"], "seconds": seconds, "peak_mb": peak_kb / 1024}


def _env() -> dict:
    return os.environ | {"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", default="top:20%")
    parser.add_argument("--min-margin", default=None)
    args = parser.parse_args()
    from ray_bench import cpu_line
    from rk_testing.tiny_models import build_tiny_model

    keep = None if args.min_margin is not None else args.keep
    cpu = cpu_line()
    with tempfile.TemporaryDirectory(prefix="rk-filter-bench-") as tmp:
        model = build_tiny_model(Path(tmp) / "tiny")
        for rows in (args.rows // 10, args.rows):
            r = run_once(model, rows, keep, args.min_margin, Path(tmp))
            print(
                f"filter {keep or f'--min-margin {args.min_margin}'} on {r['rows']:>9,} rows: kept {r['kept']:,}, "
                f"{r['rows'] / r['seconds']:,.0f} rows/s ({r['seconds']:.0f} s), peak RSS {r['peak_mb']:.0f} MB "
                f"(target < 2048)  [{cpu}]"
            )


if __name__ == "__main__":
    main()
