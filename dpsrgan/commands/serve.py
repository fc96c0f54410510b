"""``dpsrgan serve --model MODEL``: serve a generator over HTTP on Ray Serve, in the foreground.

    dpsrgan serve --model models/gan/generator.pt                 # http://127.0.0.1:8000
    dpsrgan serve --model models:/dpsrgan@champion --replicas 2 --timeout 30
    curl --data-binary @photo.jpg http://127.0.0.1:8000/upscale -o photo_x4.png

Routes: POST /upscale (body: an image file) -> 200 image/png x4, the same bytes `dpsrgan upscale`
writes (modes, EXIF orientation, ICC profile); POST /invocations keeps the MLflow pyfunc's JSON
contract; GET /healthz is 200 only while the app takes work. Errors are one JSON line:
400 a bad image, 413 over --max-pixels, 503 + Retry-After when the queue is full or the work
could not finish before its deadline, 504 past --timeout (and the work is cancelled).

Runs on a local Ray of this machine's cores, or on the cluster in RAY_ADDRESS. With
models:/NAME@ALIAS the replicas follow the alias: every --reload-interval seconds they look it
up and swap in the version it points at (answers carry X-Model-Version). SIGTERM or Ctrl-C
drains (new requests 503) and stops within 15 s. For clusters, autoscaling and GPUs use the
Serve config in infra/ray/serve/ (serve run / serve deploy, or the KubeRay RayService).
"""

from __future__ import annotations

import argparse

from dpsrgan.upscale_defaults import SERVE_MAX_PIXELS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve a generator over HTTP on Ray Serve (batching, deadlines, admission control)",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="MODEL", help="generator checkpoint or models:/NAME@ALIAS")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--replicas", type=int, default=1, metavar="N", help="model replicas (default 1)")
    parser.add_argument(
        "--max-batch-size", type=int, default=4, metavar="B",
        help="same-sized images that fit one tile run as one batch of up to B (default 4)",
    )
    parser.add_argument(
        "--max-queued", type=int, default=16, metavar="Q",
        help="requests waiting for a replica; past Q: 503 with Retry-After (default 16)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S",
        help="deadline per request from its arrival; past it: 504 and its work is cancelled (default 60)",
    )
    parser.add_argument(
        "--max-pixels", type=int, default=SERVE_MAX_PIXELS, metavar="P",
        help=f"larger inputs get 413 before any work (default {SERVE_MAX_PIXELS:,}: 1024x1024)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto (CUDA if available)")
    parser.add_argument(
        "--reload-interval", type=float, default=30.0, metavar="S",
        help="with models:/NAME@ALIAS, seconds between checks that the alias moved (0: never; default 30)",
    )


def run(args: argparse.Namespace) -> int:
    from dpsrgan.serving.runner import serve_foreground
    from dpsrgan.serving.settings import ServeSettings

    settings = ServeSettings(
        model=args.model,
        host=args.host,
        port=args.port,
        replicas=args.replicas,
        max_batch_size=args.max_batch_size,
        max_queued=args.max_queued,
        timeout_s=args.timeout,
        max_pixels=args.max_pixels,
        device=args.device,
        reload_interval_s=args.reload_interval,
    )
    return serve_foreground(settings)
