"""Training step before/after the heads-first relative-position-bias gather (issue 16, item 4).

"before" runs the previous `RelativePositionBias.forward` (row-wise `table[index]`, then
permuted to heads-first; its gradient is a serial scatter), "after" the current one
(`_GatherBias`). Every configuration runs in its own process; the second round reverses
the order, so machine noise hits both alike:

    python benchmarks/ab_bias_gather.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

PLAN = [("bair64", "bf16", 1, 2), ("push64", "bf16", 16, 8), ("push64", "fp32", 16, 8)]


def use_previous_bias_gather() -> None:
    import maskvit.model.attention as attention

    def forward(self, window):  # the previous commit's RelativePositionBias.forward
        index = attention.relative_position_index(tuple(window), self.max_window)
        index = index.to(self.table.device)
        n = index.shape[0]
        return self.table[index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)

    attention.RelativePositionBias.forward = forward


def child(code: str, preset: str, precision: str, batch: int, steps: int) -> dict:
    if code == "before":
        use_previous_bias_gather()
    import bench_transformer

    return bench_transformer.measure(preset, precision, "window", batch, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        code, preset, precision, batch, steps = args.child.split(",")
        print(json.dumps(child(code, preset, precision, int(batch), int(steps))))
        return
    results = []
    for round_, order in enumerate([("before", "after"), ("after", "before")]):
        for preset, precision, batch, steps in PLAN:
            for code in order:
                out = subprocess.run(
                    [sys.executable, __file__, "--child",
                     ",".join(map(str, (code, preset, precision, batch, steps)))],
                    capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                result.update(code=code, round=round_)
                results.append(result)
                print(f"round {round_} {code:6} {preset} {precision}: "
                      f"{result['seconds_per_step']:.3f} s/step", flush=True)
    for preset, precision, _, _ in PLAN:
        best = {code: min(r["seconds_per_step"] for r in results if r["code"] == code
                          and r["preset"] == preset and r["precision"] == precision)
                for code in ("before", "after")}
        print(f"{preset} {precision}: before {best['before']:.3f} s, after {best['after']:.3f} s, "
              f"speed-up {best['before'] / best['after']:.2f}x")
    if args.json:
        from maskvit.atomic import atomic_write_json

        atomic_write_json(args.json, {"results": results})


if __name__ == "__main__":
    main()
