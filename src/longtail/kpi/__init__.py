"""The KPI stage: what one turn of the loop changed, for product managers and the terminal.

`build_kpi` reads the turn's declared products (its evaluation, the fleet tests before and after,
its label set, the failure-mode registry); `render_kpi_html` writes the report, `format_kpi` the
table ``longtail run`` prints, `save_kpi` the JSON.
"""

from longtail.kpi.build import build_kpi, save_kpi
from longtail.kpi.report import format_kpi, render_kpi_html

__all__ = ["build_kpi", "format_kpi", "render_kpi_html", "save_kpi"]
