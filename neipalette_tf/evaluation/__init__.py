"""Evaluation workflows: metrics, calibration, reports and figures, evaluating a model on a
manifest (`evaluate`), comparing runs (`compare`) and cross-validation (`cv`)."""
