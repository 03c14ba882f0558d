"""How results are written for people and other programs: number formatting shared by the
terminal tables (bench_core.cli) and the HTML report, and the leaderboard (the rows of
``bench_core.analysis.leaderboard``) as CSV, JSON, Markdown and LaTeX (``bench show --format``,
the report's CSV download).

CSV and JSON keep numbers at full precision (missing and non-finite values empty in CSV, null in
JSON), so they read back exactly; Markdown and LaTeX show 3 significant digits, for documents.
"""
from __future__ import annotations

import io
import json
import math

#: The status counted as a success.
REACHED = "target_reached"
#: Statuses as the tables show them (short words).
STATUS_SHORT = {"target_reached": "target", "ok": "ok", "diverged": "diverged", "stalled": "stalled",
                "error": "error", "timeout": "timeout"}


def status_counts(statuses: dict) -> str:
    """"2 ok, 1 target": a leaderboard row's status counts in short words."""
    return ", ".join(f"{n} {STATUS_SHORT.get(s, s)}" for s, n in sorted(statuses.items()))


def fmt(value, digits: int = 3) -> str:
    """A value as a table shows it: "—" for None and NaN, "∞" for infinity, whole floats without
    a decimal point, other floats to `digits` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def _finite(v):
    """`v` when it is a finite number (or not a float), else None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


#: The columns of ``leaderboard_records`` (and of the CSV), in order.
LEADERBOARD_COLUMNS = (
    "problem", "setting", "optimizer", "hparams", "kind", "seeds", "reached", "success_rate",
    "success_ci_low", "success_ci_high", "time_to_target_s", "time_to_target_q1", "time_to_target_q3",
    "time_to_target_ci_low", "time_to_target_ci_high", "steps_to_target", "metric", "final_metric",
    "final_metric_q1", "final_metric_q3", "train_time_s", "steps", "statuses", "commits", "hosts")


def _leaderboard_values(rows: list[dict]) -> list[tuple]:
    """Per leaderboard row, its values in LEADERBOARD_COLUMNS order, as the row holds them."""
    out = []
    for r in rows:
        prov = r.get("provenance", {})
        out.append((r["problem"], r["optimizer"], r["optimizer_name"], r["hparams"], r["kind"], r["seeds"],
                    r["statuses"].get(REACHED, 0), r["success_rate"], *r["success_ci"], r["time_to_target_s"],
                    *r["time_to_target_iqr"], *r["time_to_target_ci"], r["steps_to_target"], r["metric"],
                    r["final_metric"], *r["final_metric_iqr"], r["train_time_s"], r["steps"], dict(r["statuses"]),
                    " ".join(prov.get("commits", [])), " ".join(prov.get("hosts", []))))
    return out


def leaderboard_records(rows: list[dict]) -> list[dict]:
    """One flat dict per leaderboard row, keyed by LEADERBOARD_COLUMNS: numbers as they are
    (None where missing or not finite), ``setting`` the whole stored label, ``statuses`` a dict."""
    return [{k: _finite(v) for k, v in zip(LEADERBOARD_COLUMNS, values)} for values in _leaderboard_values(rows)]


def leaderboard_csv(rows: list[dict]) -> str:
    """The leaderboard as CSV text (LEADERBOARD_COLUMNS; pyarrow's writer, strings quoted),
    numbers at full precision, missing and non-finite values empty, statuses as JSON."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    columns = list(zip(*_leaderboard_values(rows))) or [()] * len(LEADERBOARD_COLUMNS)
    arrays = {}
    for name, values in zip(LEADERBOARD_COLUMNS, columns):
        if name == "statuses":
            values = [json.dumps(v) for v in values]
        arr = pa.array(values, None if values else pa.string(), from_pandas=True)  # NaN: missing
        if pa.types.is_floating(arr.type):
            arr = pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, arr.type))  # ±inf: missing
        arrays[name] = arr
    sink = io.BytesIO()
    pa_csv.write_csv(pa.table(arrays), sink)
    return sink.getvalue().decode("utf-8")


def _plain(v):
    """`v` made JSON-safe: tuples as lists, non-finite floats as None, numpy scalars as numbers."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    return _finite(v)


def leaderboard_json(rows: list[dict]) -> str:
    """The leaderboard rows as a JSON array, every key of ``analysis.leaderboard`` kept (numbers
    at full precision, intervals as [low, high], missing or non-finite values null)."""
    return json.dumps([_plain(r) for r in rows], indent=1, allow_nan=False) + "\n"


#: The columns of the Markdown and LaTeX tables: (header, function of a record giving the cell).
def _document_columns():
    def ci(rec):
        lo, hi = rec["time_to_target_ci_low"], rec["time_to_target_ci_high"]
        return "" if rec["time_to_target_s"] is None or lo is None else f"[{fmt(lo)}, {fmt(hi)}]"
    return (("problem", lambda r: r["problem"]), ("setting", lambda r: r["setting"]),
            ("reached", lambda r: f"{r['reached']}/{r['seeds']}"),
            ("time to target s", lambda r: fmt(r["time_to_target_s"])), ("95% CI", ci),
            ("steps to target", lambda r: fmt(r["steps_to_target"])), ("metric", lambda r: r["metric"] or ""),
            ("final", lambda r: fmt(r["final_metric"])), ("train s", lambda r: fmt(r["train_time_s"])),
            ("steps", lambda r: fmt(r["steps"])))


_NUMERIC = {"reached", "time to target s", "95% CI", "steps to target", "final", "train s", "steps"}


def leaderboard_markdown(rows: list[dict]) -> str:
    """The leaderboard as a GitHub-flavoured Markdown table (3 significant digits; the setting's
    whole label; "—" where a value is missing), then its note on what the numbers are."""
    cols = _document_columns()
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(h for h, _ in cols) + " |",
             "|" + "|".join("---:" if h in _NUMERIC else "---" for h, _ in cols) + "|"]
    for rec in leaderboard_records(rows):
        lines.append("| " + " | ".join(esc(str(f(rec))) for _, f in cols) + " |")
    return "\n".join(lines) + "\n\n" + DOCUMENT_NOTE + "\n"


DOCUMENT_NOTE = ("Medians over seeds; time and steps to target over the seeds that reached it, with the "
                 "bootstrap 95% interval of the time; final: the median final value of the metric.")

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "—": "---", "∞": r"$\infty$"}


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped (for a tabular cell)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def leaderboard_latex(rows: list[dict]) -> str:
    """The leaderboard as a LaTeX ``tabular`` with booktabs rules (``\\usepackage{booktabs}``),
    3 significant digits, a midrule between problems, the note as a comment."""
    cols = _document_columns()
    spec = "".join("r" if h in _NUMERIC else "l" for h, _ in cols)
    lines = [f"% {DOCUMENT_NOTE}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h, _ in cols) + r" \\", r"\midrule"]
    last = None
    for rec in leaderboard_records(rows):
        if last is not None and rec["problem"] != last:
            lines.append(r"\midrule")
        lines.append(" & ".join(latex_escape(str(f(rec))) for _, f in cols) + r" \\")
        last = rec["problem"]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
