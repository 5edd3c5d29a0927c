"""The results table, the JSON file and the latency plot."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict) -> str:
    """One line per (target, phase)."""
    header = (
        f"{'target':<11} {'phase':<10} {'sends/s':>7} {'dlv/s off':>9} {'dlv/s got':>9} "
        f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>6} {'never':>5} {'dup':>4} "
        f"{'stale':>5} {'srv cpu%':>8} {'gen cpu%':>8} {'post p99':>8}"
    )
    lines = [
        "latency: POST start -> first frame with the text, every open tab of every member; lost: not seen",
        "within 10 s of the phase's end; never: not seen at all once the server went quiet (in a thread, or as a\n"
        "list preview, counted in send order; see bench/load.py finalize); dup: a message",
        "twice in a thread list; stale: a thread list lacking a message an earlier frame had; cpu% of one core",
        "",
        header, "-" * len(header),
    ]
    for target in results["targets"]:
        for phase in target.get("phases", []):
            latency = phase["latency_ms"]
            lines.append(
                f"{target['name']:<11} {phase['phase']:<10} {_fmt(phase['offered_sends_per_s'], 0):>7} "
                f"{_fmt(phase['offered_deliveries_per_s'], 0):>9} {_fmt(phase['achieved_deliveries_per_s'], 0):>9} "
                f"{_fmt(latency['p50']):>8} {_fmt(latency['p90']):>8} {_fmt(latency['p99']):>8} "
                f"{_fmt(latency['max']):>8} {phase['lost']:>6} {_fmt(phase.get('never_delivered')):>5} {phase['duplicates']:>4} "
                f"{phase['stale_frames']:>5} {_fmt(phase['server_cpu_pct']):>8} "
                f"{_fmt(phase['loadgen_cpu_pct']):>8} {_fmt(phase['post_latency_ms']['p99'], 0):>8}"
            )
    lines.append("")
    for target in results["targets"]:
        setup = target.get("setup", {})
        memory = (
            f"{target['name']}: {setup.get('connected')}/{setup.get('clients')} tabs open in "
            f"{setup.get('connect_seconds')} s (open p50/p99 {setup.get('open_latency_ms', {}).get('p50')}/"
            f"{setup.get('open_latency_ms', {}).get('p99')} ms); server memory per idle tab "
            f"{setup.get('server_kib_per_client')} KiB"
        )
        if "redis_kib_per_client" in setup:
            memory += f", Redis {setup['redis_kib_per_client']} KiB"
        lines.append(memory)
        for history in target.get("with_history", []):
            line = (
                f"  with {history['messages_per_conversation']:,} messages in every conversation (a fresh server, "
                f"{history['thread_rows_shown_mean']} shown per tab, {history['frame_bytes_per_tab']:,} bytes of frames "
                f"per tab): {history['server_kib_per_client']} KiB per idle tab"
            )
            if "redis_kib_per_client" in history:
                line += f", Redis {history['redis_kib_per_client']} KiB"
            after = history.get("after_one_more_message")
            if after:
                line += f"; after one more message in each, {after['server_kib_per_client']} KiB"
                if "redis_kib_per_client" in after:
                    line += f", Redis {after['redis_kib_per_client']} KiB"
            lines.append(line)
        if "sign_in_sequential_ms" in target:
            s = target["sign_in_sequential_ms"]
            lines.append(f"  sign-in, sequential (n={s['n']}): p50 {s['p50']} ms, p99 {s['p99']} ms")
        for phase in target.get("phases", []):
            if "storms" in phase:
                storms = phase["storms"]
                lines.append(
                    f"  {phase['phase']}: {storms['storms']} storm(s) of 20 concurrent sign-ins, "
                    f"{storms['storm_seconds']} s each; delivery p99 during storm "
                    f"{storms['delivery_ms_during_storm']['p99']} ms vs outside "
                    f"{storms['delivery_ms_outside_storm']['p99']} ms"
                )
        if "overload" in target:
            over = target["overload"]
            lines.append(
                f"  overload: sustained {over['sustained_sends_per_s']} sends/s -> {over['rate']} sends/s; "
                f"after load every thread equals the database: {over['threads']['equal']} "
                f"({over['threads']['mismatched']} mismatched, {over['threads']['disconnected']} disconnected, "
                f"quiet after {over['quiet_after_s']} s); list rows right: {over['threads'].get('lists_right')} "
                f"({over['threads'].get('list_rows_checked')} rows, {over['threads'].get('list_wrong_previews')} wrong "
                f"previews, {over['threads'].get('list_wrong_unread')} wrong unread counts)"
            )
    db = results.get("db")
    if db:
        lines.append("")
        for kind in ("sqlite", "postgresql"):
            entry = db.get(kind)
            if not entry:
                continue
            big, small, commit = entry["history_page_big_ms"], entry["history_page_small_ms"], entry["send_message_commit_ms"]
            lines.append(
                f"history page (before=mid) {kind}: {db['big_conversation_messages']:,} msgs p50/p99 "
                f"{big['p50']}/{big['p99']} ms vs {db['small_conversation_messages']:,} msgs "
                f"{small['p50']}/{small['p99']} ms; send_message commit p50/p99/max "
                f"{commit['p50']}/{commit['p99']}/{commit['max']} ms (n={commit['n']})"
            )
    return "\n".join(lines)


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, default=str))


def plot(results: dict, path: Path) -> None:
    """Delivery latency p50/p90/p99 against offered send rate, one panel per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in results["targets"] if t.get("phases")]
    if not targets:
        return
    fig, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 4.4), squeeze=False, sharey=True)
    for axis, target in zip(axes[0], targets, strict=True):
        phases = [p for p in target["phases"] if "storms" not in p and p["latency_ms"]["n"]]
        phases.sort(key=lambda p: p["offered_sends_per_s"])
        rates = [p["offered_sends_per_s"] for p in phases]
        def finite(value):
            return value if isinstance(value, (int, float)) else float("nan")  # "inf": never delivered

        for key, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^-")):
            axis.plot(rates, [finite(p["latency_ms"][key]) for p in phases], style, label=key)
        for number, phase in enumerate(phases):
            note = f"{phase['achieved_deliveries_per_s']:.0f}/{phase['offered_deliveries_per_s']:.0f} dlv/s"
            if phase["phase"] == "overload":
                note = "overload\n" + note
            if phase["lost"]:
                note += f"\nlost {phase['lost']}"
            if phase.get("never_delivered"):
                note += (
                    f"\nnever {phase['never_delivered']}"
                    f" (thread {phase.get('never_in_thread', '?')})"
                )
            if phase.get("stale_frames"):
                note += f"\nstale {phase['stale_frames']}"
            y = finite(phase["latency_ms"]["p99"])
            if y != y:  # nan
                y = finite(phase["latency_ms"]["p50"])
            axis.annotate(note, (phase["offered_sends_per_s"], y),
                          textcoords="offset points", xytext=(4, 6 - 34 * (number % 2)), fontsize=7)
        axis.set_title(f"{target['name']} ({target['setup'].get('connected')} tabs)")
        axis.set_xlabel("offered sends/s (HTTP POST)")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel("POST start -> first frame with the text (ms, every delivery)")
    fig.suptitle(f"Delivery latency, {results['started']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
