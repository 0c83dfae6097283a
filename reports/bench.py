"""The performance page of ``gradfuzz bench``: engine/torch time ratios per workload.

Reads ``bench.json`` only (format in :mod:`fuzz.bench`); never imports the
engine, torch or the fuzz package. matplotlib is imported when the chart is drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .render import MISSING, meta_rows, number, seconds, text, write_page

MACHINE_FIRST = [("processor", "processor"), ("cpu_count", "CPUs"), ("usable_cpus", "CPUs usable"),
                 ("torch_threads", "torch threads"), ("numpy_blas", "numpy BLAS"), ("platform", "platform")]
NOTES = ["Timings on a shared or busy machine are noisy and differ between runs; the ratios within one run are "
         "what counts, because rounds of all backends are interleaved and noise hits them alike. Not so when other "
         "processes take CPUs: the thread pools of torch and OpenBLAS then slow down many times more than one "
         "thread does, and a workload marked busy is no measurement."]
# Other processes' share of the CPUs above which a workload's ratios are marked unreliable (bench.json
# files record theirs under settings.busy_share; this is for files that do not).
DEFAULT_BUSY_SHARE = 0.1


def load_bench(path: str | Path) -> dict[str, Any]:
    """A bench.json, given as the file or its directory; ValueError when it is missing or not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "bench.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict) or data.get("kind") != "bench":
        raise ValueError(f"{path} is not a gradfuzz bench.json")
    return data


def previous_summary(data: dict[str, Any], source: str) -> dict[str, Any]:
    """What a later run compares with: an earlier run's ratios and medians."""
    workloads = {}
    for name, entry in (data.get("workloads") or {}).items():
        medians = {backend: side.get("median") for backend, side in (entry.get("backends") or {}).items()
                   if side.get("status") == "ok"}
        workloads[name] = {"ratio": entry.get("ratio"), "medians": medians}
    return {"source": source, "started": data.get("started"), "machine": data.get("machine"),
            "workloads": workloads}


def render_bench(out_dir: str | Path, *, previous: str | Path | None = None) -> Path:
    """Render ``out_dir/index.html`` from ``out_dir/bench.json`` and return its path.

    ``previous`` (another bench.json or its directory) replaces the earlier run
    that bench.json recorded, if any, for the change column.
    """
    out_dir = Path(out_dir)
    data = load_bench(out_dir)
    if previous is not None:
        data["previous"] = previous_summary(load_bench(previous), str(previous))
    tested, reference = str(data.get("tested", "engine")), str(data.get("reference", "torch"))
    backends = [str(b) for b in data.get("backends") or [tested, reference]]
    earlier = data.get("previous") or None
    peers = [b for b in backends if b not in (tested, reference)]
    # (Files before "peer_targets" had no variants: every peer was a target.)
    peer_targets = [str(b) for b in data.get("peer_targets", peers)]
    busy_share = number((data.get("settings") or {}).get("busy_share"))
    busy_share = DEFAULT_BUSY_SHARE if busy_share is None else busy_share
    rows = [_workload_row(name, entry, tested, reference, earlier, peers, peer_targets, busy_share)
            for name, entry in (data.get("workloads") or {}).items()]
    background = number(data.get("background_cpu"))
    with_target = [row for row in rows if row["status"] in ("met", "missed")]
    # Issue 7's other target: faster than each peer library that ran, on every workload.
    against_peers = [versus for row in rows for versus in row["versus"] if versus["ratio"] and versus["target"]]
    page = {
        "tested": tested, "reference": reference, "backends": backends, "rows": rows,
        "met": sum(row["status"] == "met" for row in with_target) + sum(v["faster"] for v in against_peers),
        "targets": len(with_target) + len(against_peers),
        "chart": _chart(rows, tested, reference),
        "absolute": _absolute_rows(data, backends, reference),
        "peers": peers,
        "variants": [peer for peer in peers if peer not in peer_targets],
        "memory": _memory(data.get("memory"), backends),
        "previous": _previous(earlier, data.get("machine")),
        "machine": meta_rows(data.get("machine") or {}, MACHINE_FIRST),
        "versions": [(key, text(value)) for key, value in (data.get("versions") or {}).items()],
        "run": _run_rows(data),
        "busy_share": f"{busy_share:.0%}",
        "busy": f"{background:.0%}" if background is not None and background > busy_share else None,
    }
    return write_page(out_dir / "index.html", "bench.html", root="", page=page, notes=NOTES)


# -- views --------------------------------------------------------------------------

def duration(value: Any) -> str:
    """Seconds per call as µs, ms or s with three significant digits."""
    value = number(value)
    if value is None:
        return MISSING
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale or unit == "µs":
            return f"{value / scale:.3g} {unit}"
    return MISSING  # pragma: no cover


def _ratio(ratio: Any) -> dict[str, Any] | None:
    if not isinstance(ratio, dict):
        return None
    estimate, low, high = (number(ratio.get(key)) for key in ("estimate", "low", "high"))
    if estimate is None or estimate <= 0:
        return None
    return {"estimate": estimate, "low": low if low is not None else estimate,
            "high": high if high is not None else estimate, "text": f"{estimate:.3g}",
            "ci": f"{low:.3g} – {high:.3g}" if low is not None and high is not None else MISSING}


def _change(now: float | None, before: float | None) -> dict[str, Any] | None:
    """Relative change now vs before; negative is faster (smaller is better for times and ratios)."""
    if now is None or before is None or before <= 0:
        return None
    change = now / before - 1
    return {"value": change, "text": f"{change:+.0%}", "better": change < 0}


def _workload_row(name: str, entry: dict[str, Any], tested: str, reference: str,
                  earlier: dict[str, Any] | None, peers: list[str] = (),
                  peer_targets: list[str] | None = None, busy_share: float = 0.1) -> dict[str, Any]:
    sides = entry.get("backends") or {}
    ratio = _ratio(entry.get("ratio"))
    target = number(entry.get("target"))
    if ratio is None:
        status = "no data"
    elif target is None:
        status = "no target"
    else:
        status = "met" if ratio["estimate"] <= target else "missed"
    # The CI straddles the target: this run cannot tell met from missed.
    unsure = bool(ratio and target is not None and ratio["low"] <= target < ratio["high"])
    before = ((earlier or {}).get("workloads") or {}).get(name) or {}
    before_ratio = _ratio(before.get("ratio"))
    problems = [f"{backend}: {side.get('status')}" + (f" ({side['error']})" if side.get("error") else "")
                for backend, side in sides.items() if side.get("status") not in ("ok", None)
                and backend in (tested, reference)]
    background = number(entry.get("background_cpu"))
    busy = background is not None and background > busy_share
    if busy:
        problems.append(f"other processes kept {background:.0%} of the CPUs busy meanwhile: not reliable")
    return {
        "name": name, "description": text(entry.get("description")),
        "tested": duration((sides.get(tested) or {}).get("median")),
        "reference": duration((sides.get(reference) or {}).get("median")),
        "ratio": ratio, "target": target, "target_text": f"≤ {target:g}" if target is not None else MISSING,
        "status": status, "unsure": unsure, "busy": busy, "problems": problems,
        "before": before_ratio,
        "versus": [{"peer": peer, "ratio": (r := _ratio((entry.get("versus") or {}).get(peer))),
                    "faster": bool(r and r["estimate"] < 1),
                    "target": peer_targets is None or peer in peer_targets} for peer in peers],
        "change": _change(ratio["estimate"] if ratio else None, before_ratio["estimate"] if before_ratio else None),
    }


def _absolute_rows(data: dict[str, Any], backends: list[str], reference: str) -> list[dict[str, Any]]:
    rows = []
    for name, entry in (data.get("workloads") or {}).items():
        ratios = entry.get("ratios") or {}
        for backend in backends:
            side = (entry.get("backends") or {}).get(backend) or {"status": "not run"}
            ok = side.get("status") == "ok"
            rounds = side.get("rounds") if isinstance(side.get("rounds"), list) else []
            ratio = _ratio(ratios.get(backend)) if backend != reference else None
            rows.append({
                "workload": name, "backend": backend, "ok": ok,
                "status": text(side.get("status")) + (f": {side['error']}" if side.get("error") else ""),
                "median": duration(side.get("median")), "median_sort": number(side.get("median")) or -1,
                "spread": f"{duration(side.get('q1'))} – {duration(side.get('q3'))}" if ok else MISSING,
                "min": duration(side.get("min")),
                "calls": side.get("calls_per_round"), "rounds": len(rounds),
                "ratio": ratio["text"] if ratio else ("1 (reference)" if backend == reference and ok else MISSING),
                "ci": ratio["ci"] if ratio else MISSING,
            })
    return rows


def _bytes(value: Any) -> str:
    value = number(value)
    if value is None:
        return MISSING
    return f"{value / 2**20:,.1f} MiB"


def _memory(memory: Any, backends: list[str]) -> dict[str, Any] | None:
    if not isinstance(memory, dict):
        return None
    sides = memory.get("backends") or {}
    rows = [{"backend": backend, "growth": _bytes(side.get("peak_growth_bytes")),
             "baseline": _bytes(side.get("baseline_bytes")), "error": side.get("error")}
            for backend in backends if isinstance(side := sides.get(backend), dict)]
    return {"workload": text(memory.get("workload")), "repeats": text(memory.get("repeats")),
            "measures": text(memory.get("measures")), "rows": rows}


def _previous(earlier: Any, machine: Any) -> dict[str, Any] | None:
    if not isinstance(earlier, dict):
        return None
    same = earlier.get("machine") == machine if earlier.get("machine") is not None else None
    return {"source": text(earlier.get("source")), "started": text(earlier.get("started")),
            "same_machine": same}


def _run_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    settings = data.get("settings") or {}
    boot = settings.get("bootstrap") or {}
    return [("started", text(data.get("started"))), ("duration", seconds(data.get("duration_seconds"))),
            ("command", text(data.get("command"))),
            ("rounds", f"{text(settings.get('rounds'))} timed after {text(settings.get('warmup'))} warm-up, "
                       f"interleaved across backends"),
            ("round length", f"at least {text(settings.get('min_time'))} s (calls per round calibrated)"),
            ("other load", _background_text(data.get("background_cpu"))),
            ("confidence interval", f"{text(boot.get('confidence'))}, {text(boot.get('method'))}, "
                                    f"{text(boot.get('resamples'))} resamples, seed {text(boot.get('seed'))}")]


def _background_text(share: Any) -> str:
    share = number(share)
    if share is None:
        return "not measured"
    return f"other processes kept up to {share:.0%} of the usable CPUs busy while a workload was timed"


# -- chart --------------------------------------------------------------------------

def _chart(rows: list[dict[str, Any]], tested: str, reference: str) -> str | None:
    """Ratio per workload with its CI, a line at 1 and the targets; log scale
    when the ratios span more than a factor of 4."""
    rows = [row for row in rows if row["ratio"]]
    if not rows:
        return None
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    from .charts import BAD, GOOD, NEUTRAL
    from .svg import SVG_RC, figure_to_svg

    style = {**SVG_RC, "font.size": 8, "axes.spines.top": False, "axes.spines.right": False}
    values = [v for row in rows for v in (row["ratio"]["low"], row["ratio"]["high"], row["target"],
                                          (row["before"] or {}).get("estimate")) if v] + [1.0]
    low, high = min(values), max(values)
    log = high / low > 4
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(6.5, 0.9 + 0.32 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        y = list(range(len(rows)))[::-1]  # first workload on top
        ax.axvline(1.0, color="#5b6573", linewidth=0.8, linestyle="--")
        for position, row in zip(y, rows):
            r = row["ratio"]
            color = {"met": GOOD, "missed": BAD}.get(row["status"], NEUTRAL)
            ax.errorbar([r["estimate"]], [position], xerr=[[r["estimate"] - r["low"]], [r["high"] - r["estimate"]]],
                        fmt="o", color=color, markersize=5, capsize=3, linewidth=1.2)
            # The label goes right of the CI bar, and of the target tick when that is close behind it.
            right = max(r["high"], row["target"]) if row["target"] and row["target"] < r["high"] * 1.3 else r["high"]
            ax.annotate(f"{r['estimate']:.3g}", (right, position), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7, color=color)
            if row["target"] is not None:
                ax.plot([row["target"]], [position], marker="|", markersize=13, markeredgewidth=2,
                        color="#1d232b", linestyle="none")
            if row["before"]:
                ax.plot([row["before"]["estimate"]], [position], marker="o", markersize=5, fillstyle="none",
                        color=NEUTRAL, linestyle="none")
        ax.set_yticks(y, [row["name"] for row in rows], parse_math=False)
        if log:
            ax.set_xscale("log")
            ax.set_xlim(low / 1.6, high * 1.6)
            # Plain numbers at 1-2-5 steps, not powers of ten.
            ticks = [m * 10.0 ** e for e in range(-4, 5) for m in (1, 2, 5) if low / 1.6 <= m * 10.0 ** e <= high * 1.6]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
            ax.xaxis.set_minor_locator(NullLocator())
        else:
            ax.set_xlim(0, high * 1.15)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel(f"{tested} time / {reference} time (dot: ratio of medians, bar: 95% CI, "
                      f"| target, ○ previous run){', log scale' if log else ''}", parse_math=False)
        return figure_to_svg(fig)
