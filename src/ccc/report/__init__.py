"""`ccc report`: a local run's telemetry rendered as one self-contained HTML page."""

from ccc.report.render import ReportData, load_telemetry, render_html

__all__ = ["ReportData", "load_telemetry", "render_html"]
