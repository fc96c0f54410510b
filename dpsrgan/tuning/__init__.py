"""The Ray Tune sweep over the adversarial weight (the tune stage), one job a module:

- :mod:`~dpsrgan.tuning.objective`: the objective of a trial's validation metrics (pure);
- :mod:`~dpsrgan.tuning.space`: the search space, the trials' concurrency, the sweep's name;
- :mod:`~dpsrgan.tuning.reference`: the bar, the pretrained generator on the same valid images;
- :mod:`~dpsrgan.tuning.trial`: one trial, a short GAN fine-tune on Ray Train;
- :mod:`~dpsrgan.tuning.progress`: the console line per trial epoch;
- :mod:`~dpsrgan.tuning.report`: the per-trial table, the plot, the MLflow runs;
- :mod:`~dpsrgan.tuning.best`: ``best.json``, the choice train_gan applies at its config boundary;
- :mod:`~dpsrgan.tuning.sweep`: the orchestration (``run_sweep``).
"""
