"""One table from the scenarios' results: the systems side by side, ratios, targets met or missed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SYSTEM_ORDER = ("ceiling", "ceiling-nodelay", "gateway", "gateway-nagle", "flask-sse")
Row = tuple[str, str, dict[str, str], str, str]  # scenario, metric, value per system, target, verdict


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[ok]


def _by_system(rows: list[dict[str, Any]], **match: Any) -> dict[str, dict[str, Any]]:
    return {r["system"]: r for r in rows if all(r.get(k) == v for k, v in match.items())}


def _line(scenario: str, metric: str, per: dict[str, dict[str, Any]], value: Callable[[dict], Any],
          target: str = "", check: Callable[[Any], bool] | None = None) -> Row:
    values = {name: _fmt(value(r)) for name, r in per.items()}
    verdict = ""
    gateway = per.get("gateway")
    if check is not None and gateway is not None:
        raw = value(gateway)
        verdict = _verdict(None if raw is None else bool(check(raw)))
    return scenario, metric, values, target, verdict


def build_rows(results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    rows: list[Row] = []
    cap = results.get("capacity", [])
    for level in sorted({r["clients"] for r in cap}):
        per = _by_system(cap, clients=level)
        s = f"capacity {level:,}"
        rows.append(_line(s, "streams held", per, lambda r: r["held"], f"{level:,}", lambda v, n=level: v >= n))
        rows.append(_line(s, "RSS KB per stream", per, lambda r: r["kb_per_stream"], "≤ 30", lambda v: v <= 30))
        rows.append(_line(s, "Redis connections", per, lambda r: r["redis_connections"], "1 per process",
                          lambda v: v <= 1))
        rows.append(_line(s, "heartbeats got/expected", per,
                          lambda r: f"{r['heartbeats']}/{r['heartbeats_expected']}"))
        interval = next(iter(per.values()))["heartbeat_ms"]
        rows.append(_line(s, "max heartbeat gap ms", per,
                          lambda r: r["heartbeat_max_gap_ms"] if r["heartbeats"] else None,
                          f"≤ {interval} + 500", lambda v, i=interval: v <= i + 500))
    fan = results.get("fanout", [])
    for level in sorted({r["clients"] for r in fan}):
        per = _by_system(fan, clients=level)
        s = f"fan-out {level:,}"
        rows.append(_line(s, "messages/s written", per, lambda r: r["msgs_per_s"], "≥ 50,000", lambda v: v >= 50_000))
        rows.append(_line(s, "delivered/expected", per, lambda r: f"{r['messages']}/{r['expected']}"))
        rows.append(_line(s, "server CPU s per 100k msgs", per, lambda r: r["cpu_s_per_100k"]))
        ceiling = per.get("ceiling", {}).get("msgs_per_s")
        flask = per.get("flask-sse", {}).get("msgs_per_s")
        for name in ("gateway", "gateway-nagle"):
            rate = per.get(name, {}).get("msgs_per_s")
            if ceiling and rate:
                ratio = rate / ceiling
                rows.append((s, "rate ÷ ceiling's", {name: f"{ratio:.2f}"}, "≥ 0.50",
                             _verdict(ratio >= 0.5) if name == "gateway" else ""))
            if flask and rate:
                rows.append((s, "rate ÷ flask-sse's", {name: f"{rate / flask:.1f}×"}, "> 1",
                             _verdict(rate > flask) if name == "gateway" else ""))
    lat = results.get("latency", [])
    for window in sorted({r["window_ms"] for r in lat}):
        per = _by_system(lat, window_ms=window)
        s = f"latency window {window} ms"
        limit = 20 if window == 0 else window + 30
        rows.append(_line(s, "p50 / p95 ms", per, lambda r: f"{_fmt(r['p50_ms'])} / {_fmt(r['p95_ms'])}"))
        rows.append(_line(s, "p99 ms", per, lambda r: r["p99_ms"], f"≤ {limit}", lambda v, m=limit: v <= m))
        rows.append(_line(s, "max ms", per, lambda r: r["max_ms"]))
        rows.append(_line(s, "server CPU s per 100k msgs (paced)", per, lambda r: r.get("cpu_s_per_100k")))
        rows.append(_line(s, "events got/expected", per, lambda r: f"{r['events']}/{r['events_expected']}"))
    bur = _by_system(results.get("burst", []))
    if bur:
        g = bur.get("gateway", {})
        s = "burst"
        rows.append(_line(s, "events published", bur, lambda r: r["events"]))
        rows.append(_line(s, "messages per client (max)", bur, lambda r: r["msgs_per_client_max"],
                          f"≤ {g.get('msgs_per_client_bound', '?')}",
                          lambda v: v <= g.get("msgs_per_client_bound", 0)))
        rows.append(_line(s, "first message ms after publish began", bur, lambda r: r["first_message_after_ms"]))
        rows.append(_line(s, "drained ms after last publish", bur, lambda r: r["drained_after_ms"],
                          f"≤ {g.get('window_ms', '?')}", lambda v: v <= g.get("window_ms", 0)))
        rows.append(_line(s, "RSS growth MB", bur, lambda r: r["rss_growth_mb"], "< 50", lambda v: v < 50))
        rows.append(_line(s, "events announced/expected", bur,
                          lambda r: f"{r['events_announced']}/{r['events_expected']}"))
    for r in results.get("bus", []):
        rows.append(("bus", r["what"], {"gateway": _fmt(r["per_s"])}, "events/s", ""))
    for r in results.get("pipeline", []):
        rows += pipeline_rows(r)
    for r in results.get("notify", []):
        rows.append(("notify", r["what"], {"gateway": _fmt(r["per_s"])}, "", ""))
    for r in results.get("storm", []):
        rows += storm_rows(r)
    return rows


def storm_rows(r: dict[str, Any]) -> list[Row]:
    """A restart under N dashboards (bench/storm.py), against the targets of a deploy."""
    s = f"storm {r['clients']:,} {r['restart']}"
    limit = 10.0 if r["clients"] <= 5000 else 20.0

    def line(metric: str, value: Any, target: str = "", ok: bool | None = None) -> Row:
        return s, metric, {"gateway": _fmt(value)}, target, _verdict(ok) if target else ""

    if "error" in r:
        return [line("error", r["error"].splitlines()[0])]
    back = r.get("all_back_s")
    return [
        line("s from the restart until every client resumed", back if back is not None else
             f"{r['back']}/{r['clients']} back after {r.get('last_back_s')}", f"≤ {limit:g}",
             back is not None and back <= limit),
        line("clients that got reset", r["resets"], "0", r["resets"] == 0),
        line("events lost (published on its channels, never seen)", r["lost"], "0", r["lost"] == 0),
        line("duplicates delivered to the application / seen on the wire",
             f"{r['app_duplicates']} / {r['wire_duplicates']}", "0 delivered", r["app_duplicates"] == 0),
        line("new worker's peak CPU % (1 s samples)", r["new_worker_peak_cpu_pct"]),
        line("refusals and drops by kind", ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))),
    ]


def pipeline_rows(r: dict[str, Any]) -> list[Row]:
    """The price-sync rows: figures only (the issue sets no target for them)."""
    s = f"pipeline {r['listings']:,}"

    def line(metric: str, value: Any) -> Row:
        return s, metric, {r["system"]: _fmt(value)}, "", ""

    def pair(a: Any, b: Any) -> str:
        return f"{_fmt(a)} / {_fmt(b)}"

    return [
        line("listings repriced / seeded (5 % under the formula)", pair(r["repriced"], r["listings"])),
        line("s from `rakuda prices sync` to the last listing repriced (DB)", r["db_done_s"]),
        line("s to the last outbox row published", r["last_published_s"]),
        line("s to the first / last PRICE_CHANGE at the clients", pair(r["first_event_s"], r["last_event_s"])),
        line("events/s, trigger → last event at the clients", r["events_per_s"]),
        line("events/s, first outbox row → last published", r["events_per_s_publishing"]),
        line(f"PRICE_CHANGE events per client ({r['clients']} clients)",
             pair(r["events_per_client"], r["listings"])),
        line("tasks run (the sync and its batches; one publish_many per batch)", r["tasks_done"]),
        line("outbox rows published / written", pair(r["outbox_published"], r["outbox_rows"])),
        line(f"worker peak RSS MB, all / largest pool process (concurrency {r['concurrency']})",
             pair(r["worker_peak_rss_mb"], r["worker_peak_child_rss_mb"])),
        line("CPU s: worker (all processes) / gateway", pair(r["worker_cpu_s"], r.get("gateway_cpu_s"))),
        line("seeding s (migrations + bulk insert, not timed above)", r["seed_s"]),
    ]


def render(rows: list[Row], systems: list[str]) -> str:
    names = [s for s in SYSTEM_ORDER if s in systems]
    header = ["scenario", "metric", *names, "target (gateway)", "verdict"]
    table = [header] + [[sc, metric, *[vals.get(n, "") for n in names], target, verdict]
                        for sc, metric, vals, target, verdict in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    out = []
    for i, line in enumerate(table):
        out.append("| " + " | ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
