"""The MLflow lifecycle of a trained generator: tracking the runs that make it
(:mod:`~dpsrgan.lifecycle.tracking`), registering a version with its lineage
(:mod:`~dpsrgan.lifecycle.registry`), moving the champion alias behind a gate
(:mod:`~dpsrgan.lifecycle.promotion`) and serving it as a pyfunc (:mod:`~dpsrgan.lifecycle.serving`).
"""
