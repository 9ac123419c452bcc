"""The report of a run: plots (``figures``) and the HTML page that shows them (``page``), with no Ray Tune."""
from reporting.figures import op_frequencies
from reporting.page import ReportResult, write_report

__all__ = ["ReportResult", "op_frequencies", "write_report"]
