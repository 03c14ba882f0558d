"""Small inline-SVG charts for the HTML report: lines with bands, step profiles, interval bars
and dot plots, on linear or log axes. No JavaScript and no network; every text is escaped."""
from __future__ import annotations

import itertools
import math
from html import escape

import numpy as np

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
WIDTH, HEIGHT = 560, 300
MARGIN = {"left": 64, "right": 16, "top": 24, "bottom": 44}
_IDS = itertools.count()


def colour(i: int) -> str:
    """The i-th colour of the palette (cycled)."""
    return PALETTE[i % len(PALETTE)]


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def tick_label(v: float) -> str:
    """A short label for a tick value."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        m, e = f"{v:.0e}".split("e")
        return f"{m}e{int(e)}"
    return f"{v:.4g}"


class Scale:
    """Maps data values to pixels on a linear or log10 axis."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False):
        self.log = log
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if not hi > lo:
            pad = abs(lo) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def ticks(self, n: int = 5) -> list[float]:
        """Tick values: powers of ten on a log axis, 1-2-5 steps on a linear one."""
        if self.log:
            lo, hi = math.floor(self.lo), math.ceil(self.hi)
            step = max(1, math.ceil((hi - lo) / 6))
            return [10.0 ** e for e in range(lo, hi + 1, step) if self.lo - 1e-9 <= e <= self.hi + 1e-9]
        span = self.hi - self.lo
        raw = span / max(n, 1)
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
        start = math.ceil(self.lo / step) * step
        out, v = [], start
        while v <= self.hi + 1e-9 * span:
            out.append(0.0 if abs(v) < 1e-12 * span else v)
            v += step
        return out


def wants_log(values) -> bool:
    """A log axis suits positive values spanning two decades or more."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) >= 100


def _extent(values, log: bool) -> tuple[float, float]:
    vals = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not vals:
        return (1.0, 10.0) if log else (0.0, 1.0)
    return min(vals), max(vals)


def _frame(xs: Scale, ys: Scale, xlabel: str, ylabel: str, width: int, height: int,
           title: str, categories: list[str] | None = None) -> list[str]:
    left, top = MARGIN["left"], MARGIN["top"]
    bottom, right = height - MARGIN["bottom"], width - MARGIN["right"]
    out = [f'<text x="{left}" y="15" class="title">{escape(title)}</text>'] if title else []
    out.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" class="plotarea"/>')
    for t in ys.ticks():
        y = ys(t)
        out.append(f'<line x1="{left}" x2="{right}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>')
        out.append(f'<text x="{left - 4}" y="{_num(y + 3)}" text-anchor="end">{escape(tick_label(t))}</text>')
    if categories is None:
        for t in xs.ticks():
            x = xs(t)
            out.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{bottom}" class="grid"/>')
            out.append(f'<text x="{_num(x)}" y="{bottom + 14}" text-anchor="middle">{escape(tick_label(t))}</text>')
    else:
        for i, name in enumerate(categories):
            out.append(f'<text x="{_num(xs(i))}" y="{bottom + 14}" text-anchor="middle">'
                       f'{escape(_clip(name, 18))}</text>')
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis">'
               f'{escape(xlabel)}{" (log)" if xs.log else ""}</text>')
    out.append(f'<text transform="translate(12,{(top + bottom) / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'class="axis">{escape(ylabel)}{" (log)" if ys.log else ""}</text>')
    return out


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg(body: list[str], width: int, height: int, label: str) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
            + "".join(body) + "</svg>")


def _path(points, xs: Scale, ys: Scale) -> str:
    """An SVG path through the points, broken where a value cannot be drawn."""
    d, pen = [], False
    for x, y in points:
        ok = (x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
              and (x > 0 or not xs.log) and (y > 0 or not ys.log))
        if not ok:
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{_num(xs(x))},{_num(ys(y))}")
        pen = True
    return "".join(d)


def _legend(entries: list[tuple[str, int]], top: int) -> list[str]:
    """Legend rows (name, colour index) below the plot, starting at pixel row `top`."""
    out, x = [], MARGIN["left"]
    for i, (name, ci) in enumerate(entries):
        y = top + 14 * i
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour(ci)}"/>'
                   f'<text x="{x + 14}" y="{y + 9}" class="legend">{escape(_clip(name, 80))}</text>')
    return out


def _legend_height(n: int) -> int:
    return 14 * n + 6 if n else 0


def line_chart(series: list[dict], xlabel: str, ylabel: str, title: str = "", xlog: bool | None = None,
               ylog: bool | None = None, hline: float | None = None, width: int = WIDTH,
               height: int = HEIGHT, legend: bool = True, ylim: tuple | None = None) -> str:
    """Lines with optional bands. Each series: name, x, y, optional lo and hi (the band), and
    optional colour index ``ci``. Log axes when asked, or when the data span two decades;
    ``ylim`` fixes the y range; ``hline`` draws a dashed target line."""
    xs_all = [v for s in series for v in s["x"]]
    ys_all = [v for s in series for v in list(s["y"]) + list(s.get("lo") or []) + list(s.get("hi") or [])]
    if hline is not None:
        ys_all.append(hline)
    xlog = wants_log([v for v in xs_all if v and v > 0]) if xlog is None else xlog
    ylog = wants_log(ys_all) if ylog is None else ylog
    if ylog and not any(v is not None and math.isfinite(v) and v > 0 for v in ys_all):
        ylog = False
    xs = Scale(*_extent(xs_all, xlog), MARGIN["left"], width - MARGIN["right"], xlog)
    ys = Scale(*(ylim or _extent(ys_all, ylog)), height - MARGIN["bottom"], MARGIN["top"], ylog)
    body = _frame(xs, ys, xlabel, ylabel, width, height, title)
    clip = f"clip{next(_IDS)}"
    body.append(f'<clipPath id="{clip}"><rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" '
                f'width="{width - MARGIN["left"] - MARGIN["right"]}" '
                f'height="{height - MARGIN["top"] - MARGIN["bottom"]}"/></clipPath>')
    body.append(f'<g clip-path="url(#{clip})">')
    for i, s in enumerate(series):
        c = colour(s.get("ci", i))
        if s.get("lo") is not None and s.get("hi") is not None:
            upper = _path(zip(s["x"], s["hi"]), xs, ys)
            lower = _path(list(zip(s["x"], s["lo"]))[::-1], xs, ys)
            if upper and lower and "M" not in upper[1:] and "M" not in lower[1:]:
                body.append(f'<path d="{upper}L{lower[1:]}Z" fill="{c}" fill-opacity="0.18" stroke="none"/>')
        d = _path(zip(s["x"], s["y"]), xs, ys)
        if d:
            body.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="1.8" class="series">'
                        f'<title>{escape(s["name"])}</title></path>')
    if hline is not None and math.isfinite(hline) and (hline > 0 or not ylog):
        y = _num(ys(hline))
        body.append(f'<line x1="{MARGIN["left"]}" x2="{width - MARGIN["right"]}" y1="{y}" y2="{y}" '
                    f'class="target"><title>target {escape(tick_label(hline))}</title></line>')
    body.append("</g>")
    if legend:
        body += _legend([(s["name"], s.get("ci", i)) for i, s in enumerate(series)], height)
    return _svg(body, width, height + (_legend_height(len(series)) if legend else 0), title or ylabel)


def interval_bars(items: list[dict], xlabel: str, title: str = "", width: int = WIDTH) -> str:
    """Horizontal bars with interval whiskers. Each item: name, value (None: no bar, shows
    ``note`` only), lo, hi, note, ci (colour index)."""
    row_h = 22
    height = MARGIN["top"] + MARGIN["bottom"] + row_h * max(len(items), 1)
    left = 250
    values = [v for it in items for v in (it.get("value"), it.get("lo"), it.get("hi"))]
    log = wants_log(values)
    lo, hi = _extent(values, log)
    xs = Scale(lo / 1.5 if log else 0.0, hi * 1.1, left, width - MARGIN["right"] - 60, log)
    body = [f'<text x="8" y="15" class="title">{escape(title)}</text>'] if title else []
    top, bottom = MARGIN["top"], height - MARGIN["bottom"]
    for t in xs.ticks():
        x = _num(xs(t))
        body.append(f'<line x1="{x}" x2="{x}" y1="{top}" y2="{bottom}" class="grid"/>'
                    f'<text x="{x}" y="{bottom + 14}" text-anchor="middle">{escape(tick_label(t))}</text>')
    body.append(f'<text x="{(left + width) / 2:.0f}" y="{height - 6}" text-anchor="middle" class="axis">'
                f'{escape(xlabel)}{" (log)" if log else ""}</text>')
    for i, it in enumerate(items):
        y = top + row_h * i
        c = colour(it.get("ci", i))
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(_clip(it["name"], 40))}'
                    f'<title>{escape(it["name"])}</title></text>')
        v = it.get("value")
        x0 = xs.p0
        if v is not None and math.isfinite(v) and (v > 0 or not log):
            body.append(f'<path d="M{_num(x0)},{y + 5}H{_num(xs(v))}V{y + 17}H{_num(x0)}Z" fill="{c}" '
                        f'fill-opacity="0.75" class="bar"><title>{escape(it["name"])}: '
                        f'{escape(tick_label(v))}</title></path>')
            if it.get("lo") is not None and it.get("hi") is not None:
                a, b = xs(max(it["lo"], lo / 1.5) if log else it["lo"]), xs(it["hi"])
                body.append(f'<path d="M{_num(a)},{y + 11}H{_num(b)}M{_num(a)},{y + 7}V{y + 15}'
                            f'M{_num(b)},{y + 7}V{y + 15}" stroke="#222" fill="none" class="whisker"/>')
            note_x = xs(it["hi"]) if it.get("hi") is not None else xs(v)
        else:
            note_x = x0
        if it.get("note"):
            body.append(f'<text x="{_num(note_x + 6)}" y="{y + 15}" class="note">{escape(it["note"])}</text>')
    return _svg(body, width, height, title or xlabel)


def dot_chart(points: list[dict], xlabel: str, ylabel: str, title: str = "", categorical: bool = False,
              width: int = WIDTH, height: int = HEIGHT) -> str:
    """Dots, filled or hollow, joined per series. Each point: series, x (number, or a category
    when ``categorical``), y, filled (bool), label, ci (colour index)."""
    names = list(dict.fromkeys(p["series"] for p in points))
    if categorical:
        cats = list(dict.fromkeys(p["x"] for p in points))
        xs = Scale(-0.5, len(cats) - 0.5, MARGIN["left"], width - MARGIN["right"])
        xpos = {c: i for i, c in enumerate(cats)}
        xlog = False
    else:
        cats = None
        xv = [p["x"] for p in points]
        xlog = wants_log(xv) or (min(xv) > 0 and max(xv) / min(xv) >= 10)
        lo, hi = _extent(xv, xlog)
        pad = (hi / lo) ** 0.05 if xlog else (hi - lo) * 0.05 or 1.0
        xs = Scale(lo / pad if xlog else lo - pad, hi * pad if xlog else hi + pad,
                   MARGIN["left"], width - MARGIN["right"], xlog)
    yv = [p["y"] for p in points if p["y"] is not None and math.isfinite(p["y"])]
    ylog = wants_log(yv)
    lo, hi = _extent(yv, ylog)
    ys = Scale(lo, hi, height - MARGIN["bottom"], MARGIN["top"], ylog)
    body = _frame(xs, ys, xlabel, ylabel, width, height, title, [str(c) for c in cats] if cats else None)
    for si, name in enumerate(names):
        pts = [p for p in points if p["series"] == name]
        c = colour(pts[0].get("ci", si))
        coords = [((xpos[p["x"]] if categorical else p["x"]), p["y"]) for p in pts]
        order = sorted(range(len(pts)), key=lambda k: coords[k][0])
        d = _path([coords[k] for k in order], xs, ys)
        if d:
            body.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="1.2" class="series"/>')
        for p, (x, y) in zip(pts, coords):
            if y is None or not math.isfinite(y) or (ylog and y <= 0) or (xlog and x <= 0):
                continue
            fill = c if p.get("filled") else "white"
            body.append(f'<circle cx="{_num(xs(x))}" cy="{_num(ys(y))}" r="4.5" fill="{fill}" stroke="{c}" '
                        f'stroke-width="1.8"><title>{escape(p.get("label", ""))}</title></circle>')
    body += _legend([(n, next(p.get("ci", i) for p in points if p["series"] == n))
                     for i, n in enumerate(names)], height)
    return _svg(body, width, height + _legend_height(len(names)), title or ylabel)


def step_xy(taus, rho) -> tuple[list, list]:
    """Points of a right-continuous step function, for drawing a performance profile."""
    xs, ys = [], []
    for i, (t, r) in enumerate(zip(taus, rho)):
        if i:
            xs.append(float(t))
            ys.append(float(rho[i - 1]))
        xs.append(float(t))
        ys.append(float(r))
    return xs, ys


def subsample(n: int, limit: int) -> np.ndarray:
    """At most `limit` indices out of n, spread evenly, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))
