"""Distributed hyperparameter-search and ablation harness for traffic-forecasting models."""
