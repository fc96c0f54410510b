"""Serving a generator on Ray Serve (``dpsrgan serve``, or a Serve config file on a cluster).

- :mod:`~dpsrgan.serving.app`: the application — an HTTP ingress and the model replicas.
- :mod:`~dpsrgan.serving.worker`: one replica's admission, decode, compute, encode (no Serve).
- :mod:`~dpsrgan.serving.scheduler`: the replica's compute baton, shortest-first and cancellable.
- :mod:`~dpsrgan.serving.settings`: the settings, from flags or a config file's ``args:``.
- :mod:`~dpsrgan.serving.runner`: the foreground command's start, ready line and bounded stop.

Nothing here is imported by the rest of the package; importing it needs ``ray[serve]``.
"""
