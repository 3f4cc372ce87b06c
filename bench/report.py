"""report.py: turns bench/run.sh's summary into results.json and SVG charts.

    python3 bench/report.py results OUTDIR RUNS
        reads OUTDIR/summary.tsv, targets.tsv, notes.txt, machine.txt (all
        written by run.sh) and writes OUTDIR/results.json, results.svg and
        scaling.svg
    python3 bench/report.py scaling RESULTS_JSON OUT_SVG
        draws the scaling chart (docs/performance.md) from a results.json
    python3 bench/report.py markdown RESULTS_JSON
        prints the results and the targets as Markdown tables, for
        docs/performance.md

The SVG is written by hand: no plotting library, nothing to install.
"""
import json
import math
import os
import sys
from xml.sax.saxutils import escape

IMPLS = ["cogen", "boost-fcontext", "ucontext", "pthread", "cpython", "asyncio", "uvloop", "libuv", "epoll"]
# The I/O servers' benches (bench/io): their results also carry vs_libuv,
# the median as a ratio to libuv's, the reference of their targets.
IO_BENCHES = ["echo_c100", "echo_c1000", "http_c100", "syscalls_per_msg"]
UNIT_KEY = {"ns": "ns", "kib": "kib", "count": "count"}


def read_summary(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 10:
                continue
            rows.append({
                "bench": p[0], "impl": p[1], "median": float(p[2]), "min": float(p[3]),
                "max": float(p[4]), "runs": int(p[5]), "unit": p[6], "n": int(p[7]),
                "guard": None if p[8] == "-" else p[8], "fallback": None if p[9] == "-" else p[9],
            })
    return rows


def read_targets(path):
    out = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 4:
                continue
            out.append({
                "target": p[0],
                "measured": None if p[1] == "-" else float(p[1]),
                "limit": float(p[2]),
                "status": p[3],
                "note": p[4] if len(p) > 4 and p[4] else None,
            })
    return out


def read_lines(path):
    if not os.path.exists(path):
        return []
    seen, out = set(), []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and line not in seen:
                seen.add(line)
                out.append(line)
    return out


def to_json(rows):
    res = []
    libuv = {r["bench"]: r["median"] for r in rows if r["impl"] == "libuv"}
    for r in rows:
        u = UNIT_KEY.get(r["unit"], r["unit"])
        d = {"bench": r["bench"], "impl": r["impl"],
             "median_" + u: round(r["median"], 4), "min_" + u: round(r["min"], 4),
             "max_" + u: round(r["max"], 4), "runs": r["runs"], "n": r["n"]}
        if r["unit"] == "kib":
            d["kib"] = {"median": d["median_kib"], "min": d["min_kib"], "max": d["max_kib"]}
        if r["unit"] == "count":
            d["count"] = d["median_count"]
        if r["guard"]:
            d["guard"] = r["guard"]
        if r["bench"] in IO_BENCHES and libuv.get(r["bench"], 0) > 0:
            d["vs_libuv"] = round(r["median"] / libuv[r["bench"]], 4)
        if r["fallback"] and r["bench"].startswith("compact_rss_tasks"):
            d["note"] = "compact mode not active (cg_gen_compact() == 0): tasks with normal stacks measured"
        elif r["fallback"]:
            d["note"] = ("compact mode not active (cg_gen_compact() == 0): measured %d "
                         "generators with normal stacks instead of 10,000,000" % r["n"])
        res.append(d)
    return res


# ---------------------------------------------------------------------------
# SVG helpers

def svg_open(w, h):
    return ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">' % (w, h, w, h),
            '<rect width="100%" height="100%" fill="white"/>']


def text(x, y, s, anchor="start", size=12, weight="normal", fill="#222"):
    return ('<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" font-weight="%s" fill="%s">%s</text>'
            % (x, y, anchor, size, weight, fill, escape(s)))


def line(x1, y1, x2, y2, stroke="#999", width=1, dash=None):
    d = ' stroke-dasharray="%s"' % dash if dash else ""
    return ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%s"%s/>'
            % (x1, y1, x2, y2, stroke, width, d))


def fmt_ratio(r):
    if r >= 100:
        return "%.0f" % r
    if r >= 10:
        return "%.1f" % r
    if r >= 0.1:
        return "%.2f" % r
    return "%.2g" % r


# ---------------------------------------------------------------------------
# results.svg: cogen / peer ratios, one bar per (bench, peer), log scale.

RATIO_TARGETS = {
    ("roundtrip", "boost-fcontext"): 1.0, ("roundtrip", "cpython"): 0.5,
    ("throw_catch", "cpython"): 0.2,
    ("lifecycle", "boost-fcontext"): 1.0, ("lifecycle", "cpython"): 0.15,
    ("task_spawn_join", "asyncio"): 0.03, ("sleep0_switch", "asyncio"): 0.03,
    ("future_wakeup", "asyncio"): 0.03, ("queue_handoff", "asyncio"): 0.03,
    ("timer_arm_fire", "libuv"): 1.0, ("timer_arm_cancel", "libuv"): 1.0,
    ("echo_c100", "libuv"): 1.05, ("echo_c1000", "libuv"): 1.05, ("http_c100", "libuv"): 1.05,
}
ABS_TARGETS = [  # (label, bench, limit, unit)
    ("instructions per roundtrip", "instructions_roundtrip", 65, "instr."),
    ("rss_1m per generator", "rss_1m", 4.5, "KiB"),
    ("compact_rss_10m per generator", "compact_rss_10m", 0.5, "KiB"),
    ("rss_tasks_1m per task", "rss_tasks_1m", 4.6, "KiB"),
    ("compact_rss_tasks_1m per task", "compact_rss_tasks_1m", 0.6, "KiB"),
    ("system calls per echoed message", "syscalls_per_msg", 2.05, "calls"),
]
RATIO_BENCHES = ["roundtrip", "instructions_roundtrip", "next_loop", "throw_catch", "lifecycle",
                 "rss_100k", "rss_1m", "task_spawn_join", "sleep0_switch", "future_wakeup",
                 "queue_handoff", "timer_arm_fire", "timer_arm_cancel", "timer_arm_cancel_timeout",
                 "rss_tasks_1m", "echo_c100", "echo_c1000", "http_c100", "syscalls_per_msg"]


def results_svg(rows, machine, runs):
    med = {(r["bench"], r["impl"]): r for r in rows}
    bars = []  # (label, ratio, target or None, sublabel)
    for b in RATIO_BENCHES:
        if (b, "cogen") not in med:
            continue
        c = med[(b, "cogen")]["median"]
        for impl in IMPLS[1:]:
            if (b, impl) in med and med[(b, impl)]["median"] > 0:
                p = med[(b, impl)]
                unit = "calls" if b == "syscalls_per_msg" else {"ns": "ns", "kib": "KiB", "count": "instr."}[p["unit"]]
                bars.append(("%s vs %s" % (b, impl), c / p["median"], RATIO_TARGETS.get((b, impl)),
                             "%.4g / %.4g %s" % (c, p["median"], unit)))
    # The timeout scope's target is libuv's plain start+stop (timer_arm_cancel).
    if ("timer_arm_cancel_timeout", "cogen") in med and ("timer_arm_cancel", "libuv") in med:
        c = med[("timer_arm_cancel_timeout", "cogen")]["median"]
        p = med[("timer_arm_cancel", "libuv")]["median"]
        if p > 0:
            bars.append(("timer_arm_cancel_timeout vs libuv timer_arm_cancel", c / p, 1.0,
                         "%.4g / %.4g ns" % (c, p)))
    if ("compact_roundtrip", "cogen") in med and ("roundtrip", "cpython") in med:
        c = med[("compact_roundtrip", "cogen")]["median"]
        p = med[("roundtrip", "cpython")]["median"]
        if p > 0:
            bars.append(("compact_roundtrip vs cpython roundtrip", c / p, 0.5, "%.4g / %.4g ns" % (c, p)))
    absb = []
    for label, b, limit, unit in ABS_TARGETS:
        if (b, "cogen") in med:
            v = med[(b, "cogen")]
            extra = " (compact inactive: %s normal stacks)" % (
                "1M" if v["n"] == 1000000 else v["n"]) if v["fallback"] else ""
            absb.append(("%s: %.4g %s" % (label, v["median"], unit), v["median"] / limit, 1.0,
                         "limit %g %s%s" % (limit, unit, extra)))

    lo, hi = 1e-3, 1e2
    W, left, right = 1180, 300, 330
    plot_w = W - left - right
    row_h = 24
    top = 92
    n_rows = len(bars) + (len(absb) + 2 if absb else 0)
    H = top + n_rows * row_h + 50

    def X(r):
        r = min(max(r, lo), hi)
        return left + (math.log10(r) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_w

    out = svg_open(W, H)
    out.append(text(20, 28, "cogen / peer: time, memory and instructions (lower is better for cogen)",
                    size=17, weight="bold"))
    out.append(text(20, 48, "median of %s interleaved runs, log scale; a bar left of 1x means cogen is cheaper; "
                    "a thick tick marks the target; green: target met (or cheaper, where no target), "
                    "red: target missed (or costlier)" % runs, size=12, fill="#555"))
    out.append(text(20, 66, machine, size=10, fill="#777"))
    y_axis_top = top - 8
    y_axis_bot = top + n_rows * row_h
    for e in range(-3, 3):
        x = X(10 ** e)
        out.append(line(x, y_axis_top, x, y_axis_bot, stroke="#ccc" if e else "#333", width=1 if e else 1.5))
        out.append(text(x, y_axis_bot + 16, "%gx" % (10 ** e), anchor="middle", size=11, fill="#555"))
    out.append(text(X(0.03), y_axis_bot + 34, "<- cogen cheaper", anchor="middle", size=11, fill="#2a7"))
    out.append(text(X(30), y_axis_bot + 34, "cogen costlier ->", anchor="middle", size=11, fill="#c44"))

    def draw(y, label, r, target, sub, absolute=False):
        x1 = X(1.0)
        x2 = X(r)
        ok = target is None or r <= target
        color = "#3a9a5b" if r <= 1.0 else "#d0534a"
        if target is not None and not ok:
            color = "#d0534a"
        out.append(text(left - 8, y + 15, label, anchor="end", size=12))
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s" opacity="0.85"/>'
                   % (min(x1, x2), y + 4, max(abs(x2 - x1), 1.5), row_h - 8, color))
        tag = fmt_ratio(r) + "x"
        if r < lo or r > hi:
            tag += " (off scale)"
        out.append(text(max(x1, x2) + 5, y + 15, tag, size=11, fill="#333"))
        if target is not None:
            tx = X(target)
            out.append(line(tx, y + 1, tx, y + row_h - 1, stroke="#1a7f3c" if ok else "#b00020", width=3))
        if absolute:
            sub = "%s: %s" % (sub, "met" if ok else "MISSED")
        elif target is not None:
            sub = "%s; target <= %g: %s" % (sub, target, "met" if ok else "MISSED")
        out.append(text(X(hi) + 60, y + 15, sub, size=10, fill="#1a7f3c" if target is not None and ok
                        else "#b00020" if target is not None else "#777"))

    y = top
    for label, r, target, sub in bars:
        draw(y, label, r, target, sub)
        y += row_h
    if absb:
        y += row_h // 2
        out.append(text(20, y + 14, "absolute targets: measured / target (1 = exactly on target)",
                        size=12, weight="bold"))
        y += row_h + row_h // 2
        for label, r, target, sub in absb:
            draw(y, label, r, target, sub, absolute=True)
            y += row_h
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# scaling.svg: three small line charts.

def scaling_svg(results, machine):
    med = {}
    for r in results:
        for k in ("median_ns", "median_kib"):
            if k in r:
                med[(r["bench"], r["impl"])] = (r[k], r.get("note"))

    def series(fmt, xs, impl="cogen"):
        pts = []
        for x in xs:
            k = (fmt % x, impl)
            if k in med:
                pts.append((x, med[k][0]))
        return pts

    def count_name(n):
        if n >= 1000000 and n % 1000000 == 0:
            return "%dm" % (n // 1000000)
        if n >= 1000 and n % 1000 == 0:
            return "%dk" % (n // 1000)
        return str(n)

    fallbacks = {(r["bench"], r["impl"]): r.get("fallback") for r in results}

    def compact_label(benches):
        # The compact benchmarks say fallback=compact_inactive when the
        # build ignores CG_OPT_COMPACT (the ucontext fallback).
        if any(fallbacks.get((b, "cogen")) == "compact_inactive" for b in benches):
            return "cogen COMPACT (inactive: normal stacks)"
        return "cogen CG_OPT_COMPACT"

    pte = {}
    for r in results:
        if r["bench"].endswith("_pte") and "median_kib" in r:
            pte[(r["bench"][:-4], r["impl"])] = r["median_kib"]

    mem_n = [1000, 10000, 100000, 1000000]
    panels = [
        ("roundtrip vs stack depth at the yield", "frames between the body and cg_yield (256 B each)",
         "ns per roundtrip", [0, 8, 64], False,
         [("cogen", "#1f77b4", series("roundtrip_depth_%d", [0, 8, 64])),
          (compact_label(["compact_roundtrip_depth_%d" % d for d in (0, 8, 64)]), "#ff7f0e",
           series("compact_roundtrip_depth_%d", [0, 8, 64]))]),
        ("roundtrip, 1,000 generators in turn", "frames between the body and cg_yield (256 B each)",
         "ns per roundtrip (log)", [0, 8, 64], False,
         [("cogen", "#1f77b4", series("roundtrip_rotate_%d", [0, 8, 64])),
          (compact_label(["compact_roundtrip_rotate_%d" % d for d in (0, 8, 64)]).replace("_COMPACT", "_COMPACT, 64 resident"),
           "#ff7f0e", series("compact_roundtrip_rotate_%d", [0, 8, 64])),
          ("the same, cg_compact_resident(1000)", "#d62728",
           series("compact_roundtrip_rotate_resident_%d", [0, 8, 64]))], True),
        ("roundtrip through yield-from chains", "delegators above the echoing generator",
         "ns per roundtrip", [1, 4, 16], False,
         [("cogen cg_yield_from", "#1f77b4", series("roundtrip_chain_%d", [1, 4, 16])),
          ("CPython yield from", "#2ca02c", series("roundtrip_chain_%d", [1, 4, 16], "cpython"))]),
        ("memory per live generator", "generators alive (log)", "KiB each (RSS)", mem_n, True,
         [("cogen", "#1f77b4", [(n, med[("rss_" + count_name(n), "cogen")][0]) for n in mem_n
                                if ("rss_" + count_name(n), "cogen") in med]),
          ("cogen, page tables added", "#aec7e8",
           [(n, med[("rss_" + count_name(n), "cogen")][0] + pte.get(("rss_" + count_name(n), "cogen"), 0))
            for n in mem_n if ("rss_" + count_name(n), "cogen") in med]),
          (compact_label(["compact_rss_" + count_name(n) for n in mem_n]), "#ff7f0e",
           [(n, med[("compact_rss_" + count_name(n), "cogen")][0]) for n in mem_n + [10000000]
            if ("compact_rss_" + count_name(n), "cogen") in med
            and not med[("compact_rss_" + count_name(n), "cogen")][1]]),
          ("Boost fcontext", "#9467bd", [(n, med[("rss_" + count_name(n), "boost-fcontext")][0]) for n in mem_n
                                         if ("rss_" + count_name(n), "boost-fcontext") in med]),
          ("CPython", "#2ca02c", [(n, med[("rss_" + count_name(n), "cpython")][0]) for n in mem_n
                                  if ("rss_" + count_name(n), "cpython") in med])]),
    ]
    PW, PH = 330, 230
    W = 40 + len(panels) * (PW + 60)
    H = 110 + PH + 140
    out = svg_open(W, H)
    out.append(text(20, 28, "cogen: how the costs grow", size=17, weight="bold"))
    out.append(text(20, 46, machine, size=10, fill="#777"))
    for i, panel in enumerate(panels):
        title, xlabel, ylabel, xs, logx, lines = panel[:6]
        logy = len(panel) > 6 and panel[6]
        ox = 70 + i * (PW + 60)
        oy = 80
        out.append(text(ox + PW / 2, oy - 8, title, anchor="middle", size=13, weight="bold"))
        ys = [v for _, _, pts in lines for _, v in pts]
        ymax = max(ys) * 1.15 if ys else 1.0
        nice = 10 ** math.floor(math.log10(ymax)) if ymax > 0 else 1
        step = nice if ymax / nice <= 5 else nice * 2
        if ymax / step < 2:
            step /= 2
        ymax = math.ceil(ymax / step) * step
        allx = xs if not logx else xs + ([10000000] if any(x == 10000000 for _, _, p in lines for x, _ in p) else [])

        def X(x):
            if logx:
                a, b = math.log10(allx[0]), math.log10(allx[-1])
                return ox + (math.log10(x) - a) / (b - a) * PW
            return ox + allx.index(x) / (len(allx) - 1) * PW if x in allx else ox

        if logy:
            pos = [v for v in ys if v > 0]
            lo = 10 ** math.floor(math.log10(min(pos))) if pos else 1.0
            hi = 10 ** math.ceil(math.log10(max(pos))) if pos else 10.0
            if hi <= lo:
                hi = lo * 10

            def Y(v):
                v = max(v, lo)
                return oy + PH - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * PH

            ticks = [lo * 10 ** k for k in range(int(round(math.log10(hi / lo))) + 1)]
        else:
            def Y(v):
                return oy + PH - v / ymax * PH

            ticks = []
            v = 0.0
            while v <= ymax + 1e-9:
                ticks.append(v)
                v += step

        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#bbb"/>' % (ox, oy, PW, PH))
        for v in ticks:
            out.append(line(ox, Y(v), ox + PW, Y(v), stroke="#eee"))
            out.append(text(ox - 6, Y(v) + 4, "%g" % round(v, 6), anchor="end", size=10, fill="#555"))
        for x in allx:
            out.append(text(X(x), oy + PH + 15, count_name(x) if logx else str(x), anchor="middle", size=10,
                            fill="#555"))
        out.append(text(ox + PW / 2, oy + PH + 32, xlabel, anchor="middle", size=11, fill="#333"))
        out.append('<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle" font-size="11" '
                   'fill="#333">%s</text>' % (ox - 42, oy + PH / 2, ox - 42, oy + PH / 2, escape(ylabel)))
        ly = oy + PH + 50
        for li, (name, color, pts) in enumerate(lines):
            if pts:
                path = " ".join("%s%.1f,%.1f" % ("M" if j == 0 else "L", X(x), Y(v)) for j, (x, v) in enumerate(pts))
                dash = ' stroke-dasharray="6 4"' if "inactive" in name else ""
                out.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (path, color, dash))
                for j, (x, v) in enumerate(pts):
                    out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (X(x), Y(v), color))
                    # Values next to the points; with many series only at
                    # the last point, and none for a series that only
                    # repeats another (compact mode inactive).
                    if "inactive" in name or (len(lines) > 2 and j != len(pts) - 1):
                        continue
                    dy = -6 if li % 2 == 0 else 14
                    out.append(text(X(x) + 4, Y(v) + dy, "%.3g" % v if v < 1000 else "%.0f" % v, size=9,
                                    fill=color))
            label = name if pts else name + " (not measured)"
            out.append('<rect x="%d" y="%d" width="12" height="3" fill="%s"/>' % (ox, ly - 4, color))
            out.append(text(ox + 18, ly, label, size=11))
            ly += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"


def markdown(doc):
    out = []
    res = doc["results"]
    med = {(r["bench"], r["impl"]): r for r in res}
    out.append("| bench | impl | median | min | max | unit | runs | cogen / impl |")
    out.append("|---|---|---:|---:|---:|---|---:|---:|")
    for r in res:
        unit = "ns" if "median_ns" in r else "KiB" if "median_kib" in r else "instr."
        key = {"ns": "ns", "KiB": "kib", "instr.": "count"}[unit]
        if r["bench"] == "syscalls_per_msg":
            unit = "calls"
        m, lo, hi = r["median_" + key], r["min_" + key], r["max_" + key]
        ratio = ""
        c = med.get((r["bench"], "cogen"))
        if r["impl"] != "cogen" and c and m >= 0.01:
            ratio = "%.3f" % (c["median_" + key] / m)
        bench = r["bench"] + (" (n=%d)" % r["n"] if r.get("note") else "")
        fmt = "%.2f" if unit != "KiB" else "%.3f"
        out.append("| %s | %s | %s | %s | %s | %s | %d | %s |" % (
            bench, r["impl"], fmt % m, fmt % lo, fmt % hi, unit, r["runs"], ratio))
    out.append("")
    out.append("| target | measured | limit | result |")
    out.append("|---|---:|---:|---|")
    for t in doc.get("targets", []):
        meas = "-" if t["measured"] is None else "%.3f" % t["measured"]
        res_ = t["status"] + (" (%s)" % t["note"] if t.get("note") else "")
        out.append("| %s | %s | <= %g | %s |" % (t["target"], meas, t["limit"], res_))
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "results":
        d, runs = sys.argv[2], sys.argv[3]
        rows = read_summary(os.path.join(d, "summary.tsv"))
        targets = read_targets(os.path.join(d, "targets.tsv"))
        notes = read_lines(os.path.join(d, "notes.txt"))
        machine = (read_lines(os.path.join(d, "machine.txt")) or ["unknown"])[0]
        doc = {"machine": machine, "method": "median of %s interleaved process runs per figure, min and max "
               "alongside; instruction counts from callgrind (difference of two iteration counts); I/O servers: "
               "the server's CPU time (utime+stime) per message, server and load pinned to one CPU" % runs,
               "results": to_json(rows), "targets": targets, "notes": notes}
        with open(os.path.join(d, "results.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        with open(os.path.join(d, "results.svg"), "w") as f:
            f.write(results_svg(rows, machine, runs))
        with open(os.path.join(d, "scaling.svg"), "w") as f:
            f.write(scaling_svg(doc["results"], machine))
        print("bench: wrote %s, %s and %s" % tuple(os.path.join(d, x) for x in
                                                  ("results.json", "results.svg", "scaling.svg")))
    elif len(sys.argv) == 4 and sys.argv[1] == "scaling":
        with open(sys.argv[2]) as f:
            doc = json.load(f)
        with open(sys.argv[3], "w") as f:
            f.write(scaling_svg(doc["results"], doc.get("machine", "")))
        print("bench: wrote " + sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "markdown":
        with open(sys.argv[2]) as f:
            sys.stdout.write(markdown(json.load(f)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
