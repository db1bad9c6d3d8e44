"""Evaluation reports: metrics.json, per-frame curves, GIF grids and one HTML page."""

from maskvit.report.prediction_report import write_metrics_json, write_report

__all__ = ["write_metrics_json", "write_report"]
