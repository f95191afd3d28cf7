"""Reusable tensor operators (box math) shared by data, model, losses and evaluation."""
