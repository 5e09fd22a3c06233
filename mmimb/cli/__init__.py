"""Command-line front ends: ``mmimb-train``, ``mmimb-test``,
``mmimb-infer-wsi``."""
