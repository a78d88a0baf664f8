"""Evaluation harnesses on real data sets (may read ../shared/data; tests never do)."""
