"""Speed, memory and quality measurements of the pipeline (never timed assertions in tests).

One command runs them all and writes ``benchmarks/results/<machine>.json`` and ``.md``::

    python -m benchmarks            # about 6-8 minutes on a quiet 2-core CPU
    python -m benchmarks --quick    # about 2 minutes: fewer repeats, smaller samples

Its sections are modules that also run alone, with more options than the suite uses:
``python -m benchmarks.tiled`` (16-MP CLI upscale; tiled vs untiled),
``python benchmarks/train_throughput.py`` (training samples/s, also on CUDA) and
``python -m benchmarks.degrade`` (degrade stage, per-image costs, ``dvc status``).
``python benchmarks/gpu.py`` measures the GPU figures (standalone: torch + this repo).
"""
