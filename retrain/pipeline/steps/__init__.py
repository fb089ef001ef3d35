"""One module per pipeline step; each step is ``fn(services, context, *inputs) -> result``.

The step graph (:mod:`retrain.pipeline.graph`) names them by import path, so a DAG task imports
only the module of the step it runs.
"""
