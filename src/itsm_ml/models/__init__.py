"""Estimators with the scikit-learn contract, and their MLflow wrapper."""
