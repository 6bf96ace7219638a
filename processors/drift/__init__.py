"""Drift of what users send and what the model answers, against a reference profile. Pure logic."""
