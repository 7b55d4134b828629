"""Pipeline steps: one module each, with ``NAME`` and ``run(ctx)``; the order is in pipeline.py."""
