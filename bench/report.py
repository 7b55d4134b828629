"""One table of what the end-to-end benches measured: figure, floor, ratio, peers.

Run: .venv/bin/python bench/report.py [DIR]   (default var/bench, or BENCH_RESULTS): joins the JSON
that bench_download, bench_pipeline, bench_send and bench_load wrote, in that order, as Markdown.
Ratio: Buzón's figure over the floor's, measured in the same run (for a latency, how many times the
floor's it is: lower is better).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.site import RESULTS  # noqa: E402

ORDER = ["download", "download-postgres", "download-corpus", "download-corpus-postgres", "pipeline", "send",
         "send-postgres", "load"]


def _value(value: float, unit: str) -> str:
    return f"{value:,.2f} {unit}" if unit == "s" else f"{value:,.0f} {unit}"


def rows(results: list[dict[str, Any]]) -> list[str]:
    out = ["| figure | Buzón | floor (same run) | ratio | peers (same run) |", "|---|---|---|---|---|"]
    for result in results:
        for row in result["rows"]:
            unit = row.get("unit", "msg/s")
            floor, ratio = "", ""
            if row.get("floor_value"):
                floor = f"{_value(row['floor_value'], unit)}: {row['floor']}"
                ratio = f"{row['value'] / row['floor_value']:.2f}×"
            peers = "; ".join(f"{p['peer']}: {_value(p['peer_value'], unit)}" for p in row.get("peers", []))
            out.append(f"| {row['figure']} | {_value(row['value'], unit)} | {floor} | {ratio} | {peers} |")
    return out


def main() -> None:
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    found = {p.stem: json.loads(p.read_text()) for p in sorted(where.glob("*.json"))}
    results = [found[name] for name in ORDER if name in found]
    if not results:
        print(f"no results in {where}: run the benches first (make bench)")
        return
    print("\n".join(rows(results)))
    print()
    for result in results:
        print(f"- {result['bench']} ({result['mode']}, {result['when']}): " + "; ".join(result["notes"]))
    machine = results[0]["machine"].split(", load average")[0]
    loads = "; ".join(f"{r['bench']} {r['machine'].split('load average ')[-1].split(' (')[0]}" for r in results)
    print(f"- machine: {machine}, shared with other work; load average (1/5/15 min) at the end of each bench: {loads}")


if __name__ == "__main__":
    main()
