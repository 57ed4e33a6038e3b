"""Charts drawn on the server as SVG shapes (no script, no network): each function returns
the geometry the template turns into <rect> and <text> elements, styled from ops.css."""

from decimal import Decimal

from core.charts import Bar, Chart, Label, scale as _scale


def daily_chart(days, *, width: int = 720, height: int = 220) -> Chart:
    """Cost and revenue per day: `days` is [(date, Totals)], oldest first."""
    plot_top, plot_bottom, left = 18, height - 24, 8
    top = _scale([max(t.cost, t.revenue) for _, t in days])
    slot = (width - left) / max(len(days), 1)
    bar_width = max(slot * 0.38, 1)
    bars, labels = [], [Label(left, 12, f"max ${top:,.2f}", "start")]
    for index, (day, totals) in enumerate(days):
        x = left + index * slot
        for offset, value, css, name in ((0, totals.cost, "bar-cost", "GPU cost"), (bar_width, totals.revenue, "bar-revenue", "revenue")):
            h = float(value) / top * (plot_bottom - plot_top)
            bars.append(Bar(round(x + offset, 1), round(plot_bottom - h, 1), round(bar_width, 1), round(h, 1), css,
                            f"{day:%b %d} {name}: ${Decimal(value):,.2f}"))
        if index == 0:  # the end labels align inwards, so the plot's edge does not cut them
            labels.append(Label(round(x, 1), height - 6, f"{day:%b %d}", "start"))
        elif index == len(days) - 1:
            labels.append(Label(round(x + 2 * bar_width, 1), height - 6, f"{day:%b %d}", "end"))
        elif index % 5 == 0 and index < len(days) - 3:
            labels.append(Label(round(x + bar_width, 1), height - 6, f"{day:%b %d}"))
    return Chart(width, height, bars, labels, [("bar-cost", "GPU cost"), ("bar-revenue", "Revenue")],
                 "GPU cost and revenue per day over the last 30 days")


def model_chart(by_model, *, width: int = 720, row: int = 26) -> Chart:
    """GPU cost per model over 30 days: `by_model` is [(model name, Totals)]."""
    label_width, height = 220, max(row * len(by_model), row)
    top = _scale([t.cost for _, t in by_model])
    bars, labels = [], []
    for index, (model, totals) in enumerate(by_model):
        y = index * row
        w = float(totals.cost) / top * (width - label_width - 90)
        bars.append(Bar(label_width, y + 4, round(w, 1), row - 8, "bar-cost", f"{model}: ${totals.cost:,.2f}"))
        labels.append(Label(label_width - 8, y + row * 0.65, model, "end"))
        labels.append(Label(label_width + round(w, 1) + 6, y + row * 0.65, f"${totals.cost:,.2f}", "start"))
    return Chart(width, height, bars, labels, [("bar-cost", "GPU cost, 30 days")], "GPU cost per model over the last 30 days")


def hourly_chart(hours, *, width: int = 720, height: int = 160) -> Chart:
    """Jobs submitted per hour: `hours` is [(hour, count)], oldest first."""
    plot_top, plot_bottom, left = 18, height - 22, 8
    top = _scale([count for _, count in hours])
    slot = (width - left) / max(len(hours), 1)
    bars, labels = [], [Label(left, 12, f"max {int(top):,}/h", "start")]
    for index, (hour, count) in enumerate(hours):
        h = count / top * (plot_bottom - plot_top)
        x = left + index * slot
        bars.append(Bar(round(x + 1, 1), round(plot_bottom - h, 1), round(slot - 2, 1), round(h, 1), "bar-jobs",
                        f"{hour:%H}:00 UTC: {count:,} jobs"))
        if index % 3 == 0:
            labels.append(Label(round(x + slot / 2, 1), height - 6, f"{hour:%H}h"))
    return Chart(width, height, bars, labels, [("bar-jobs", "Jobs submitted")], "Jobs submitted per hour over the last 24 hours")
