"""Command-line front ends: ``mmimb-train``, ``mmimb-test``."""
