"""The Ray Serve application, live: a local Ray started here, Serve's HTTP proxy on 127.0.0.1 and
real HTTP requests.

With a tiny generator: ``POST /upscale`` returns `dpsrgan upscale`'s PNG byte for byte (every
mode, EXIF orientation, ICC), malformed uploads get one JSON line (400/413, never a traceback),
``/invocations`` keeps the pyfunc's contract, same-sized requests are batched. With the
full-size generator (slow enough to overload two cores): a full queue answers 503 with
Retry-After, a request past its deadline answers 504 and its work stops mid-image, and small
requests keep getting answers while big ones crowd the replica.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from dpsrgan.checkpoint import save_generator
from dpsrgan.models.generator import Generator
from dpsrgan.serving.settings import ServeSettings
from tests._tiny import save_tiny_generator, smooth_image
from tests.fixtures.services import free_port
from tests.test_serve_parity import bad_uploads, png_claiming, sample_uploads

pytestmark = pytest.mark.slow
APP = "dpsrgan-test"


def _png(side: int, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(smooth_image(seed, side)).save(buffer, format="PNG")
    return buffer.getvalue()


class Deployment:
    """Serve on a local Ray; :meth:`use` (re)deploys the app when the settings change."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.settings: ServeSettings | None = None

    def use(self, settings: ServeSettings) -> str:
        from ray import serve

        from dpsrgan.serving.app import build_app

        if settings != self.settings:
            serve.run(build_app(settings), name=APP, route_prefix="/")
            self.settings = settings
        return self.base

    def stats(self) -> dict:
        return requests.get(f"{self.base}/stats", timeout=30).json()

    def wait_idle(self, limit_s: float = 20.0) -> dict:
        """Stats once the replica holds no work (bounded: a replica that keeps working fails)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats["in_flight"] == 0 and stats["ingress_in_flight"] == 0:
                return stats
            time.sleep(0.2)
        raise AssertionError(f"the replica still holds work after {limit_s:.0f} s: {self.stats()}")


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    import ray
    from ray import serve

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port, "request_timeout_s": 120})
    try:
        yield Deployment(port)
    finally:
        serve.shutdown()
        if started:
            ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("serve-models")
    torch.manual_seed(0)
    return {
        "tiny": save_tiny_generator(folder / "tiny.pt", seed=7),
        "full": save_generator(Generator(), folder / "full.pt"),  # the paper's size: real CPU cost
    }


@pytest.fixture()
def tiny(deployment, models) -> str:
    return deployment.use(
        ServeSettings(model=str(models["tiny"]), timeout_s=30, max_pixels=200 * 200, batch_wait_s=0.3,
                      cpus_per_replica=1)
    )


def test_upscale_returns_the_clis_png_for_every_mode_exif_and_icc(tiny, models, tmp_path):
    from dpsrgan.inference import upscale_paths

    for name, data in sample_uploads().items():
        (tmp_path / name).write_bytes(data)
    assert upscale_paths([tmp_path], tmp_path / "cli", str(models["tiny"]), progress=False).ok
    for name, data in sample_uploads().items():
        answer = requests.post(f"{tiny}/upscale", data=data, timeout=60)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", name
        assert answer.headers["x-model-version"].startswith("tiny.pt@")
        assert answer.content == (tmp_path / "cli" / Path(name).with_suffix(".png").name).read_bytes(), name


def test_bad_uploads_get_one_json_line_and_no_traceback(tiny):
    cases = {**{name: (data, 400, reason) for name, (data, reason) in bad_uploads().items()},
             "over --max-pixels": (_png(201), 413, "201x201 = 40,401 pixels is over the pixel limit of 40,000")}
    cases["60000x60000 header"] = (png_claiming(60000, 60000), 413, "the image is over the pixel limit")
    for name, (data, status, reason) in cases.items():
        answer = requests.post(f"{tiny}/upscale", data=data, timeout=60)
        assert answer.status_code == status, (name, answer.text)
        assert answer.text.count("\n") == 1 and "Traceback" not in answer.text and "/work" not in answer.text
        error = answer.json()
        assert error["message"].startswith(f"upload: {reason}"), (name, error)
    unknown = requests.get(f"{tiny}/nope", timeout=30)
    assert unknown.status_code == 404 and "POST /upscale" in unknown.json()["message"]


def test_invocations_keep_the_pyfunc_contract(tiny):
    rows = [sample_uploads()["rgb.png"], sample_uploads()["exif6.jpg"]]
    records = [{"image_b64": base64.b64encode(data).decode()} for data in rows]
    answer = requests.post(f"{tiny}/invocations", json={"dataframe_records": records}, timeout=60)
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    direct = requests.post(f"{tiny}/upscale", data=rows[1], timeout=60).content
    assert base64.b64decode(predictions[1]["sr_b64"]) == direct
    split = {"dataframe_split": {"columns": ["image_b64"], "data": [[records[0]["image_b64"]]]}}
    assert requests.post(f"{tiny}/invocations", json=split, timeout=60).json()["predictions"][0] == predictions[0]
    refused = requests.post(f"{tiny}/invocations", json={"dataframe_records": [{"image_b64": "@@"}]}, timeout=60)
    assert refused.status_code == 400
    assert refused.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "row 0: image_b64 is not valid base64"}
    assert requests.post(f"{tiny}/invocations", data=b"{", timeout=60).status_code == 400


def test_same_sized_requests_run_as_one_batch_and_healthz_answers(tiny, deployment):
    before = deployment.stats()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda seed: requests.post(f"{tiny}/upscale", data=_png(24, seed), timeout=60), range(4)))
    assert [answer.status_code for answer in answers] == [200] * 4
    after = deployment.stats()
    assert after["batched_images"] - before["batched_images"] >= 2
    health = requests.get(f"{tiny}/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.fixture()
def full(deployment, models) -> str:
    """The full-size generator on one core: a 100k-pixel image takes seconds, as on a real box."""
    return deployment.use(
        ServeSettings(model=str(models["full"]), timeout_s=8, max_pixels=512 * 512, max_batch_size=1,
                      max_queued=1, cpus_per_replica=1)
    )


def _side_for(deployment: Deployment, seconds: float) -> int:
    """An image side whose estimated compute is ``seconds`` on this replica, as it measures itself."""
    stats = deployment.stats()
    pixels = max(seconds - stats["overhead_s"], 0.1) / stats["seconds_per_mpx"] * 1e6
    return int(min(np.sqrt(pixels), 500))


def test_a_full_queue_and_a_full_replica_answer_503_with_retry_after(full, deployment):
    """More requests at once than the replica holds plus the queue: the router refuses the rest
    ("queue full"); of those the replica holds, it refuses what would miss the deadline ("busy")."""
    settings = deployment.settings
    burst = settings.max_ongoing + settings.max_queued + 4
    side = _side_for(deployment, 0.3 * settings.timeout_s)
    with ThreadPoolExecutor(burst) as pool:
        answers = list(pool.map(lambda seed: requests.post(f"{full}/upscale", data=_png(side, seed), timeout=60),
                                range(burst)))
    refused = [answer for answer in answers if answer.status_code == 503]
    for answer in refused:
        assert int(answer.headers["retry-after"]) >= 1, answer.headers
        assert answer.headers["content-type"] == "application/json", answer.text
        assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    messages = " ".join(answer.json()["message"] for answer in refused)
    assert "queue full" in messages and "busy" in messages, [answer.status_code for answer in answers]
    # A request that waited in the queue may still miss its deadline: 504, never anything else.
    assert {answer.status_code for answer in answers} <= {200, 503, 504}
    deployment.wait_idle()


def test_past_its_deadline_a_request_gets_504_and_its_work_stops(full, deployment):
    """A big request is admitted (its estimate fits), then small ones keep overtaking it: it
    misses its deadline, answers 504, and the replica stops its work mid-image."""
    before = deployment.stats()
    side = _side_for(deployment, 0.7 * deployment.settings.timeout_s)
    flood, small_answers = threading.Event(), []

    def small_client(seed: int) -> None:
        while not flood.is_set():
            small_answers.append(requests.post(f"{full}/upscale", data=_png(40, seed), timeout=60).status_code)

    with ThreadPoolExecutor(4) as pool:
        big = pool.submit(requests.post, f"{full}/upscale", data=_png(side, 9), timeout=60)
        time.sleep(0.5)  # the big one is admitted before the small ones arrive
        clients = [pool.submit(small_client, seed) for seed in range(3)]
        answer = big.result()
        flood.set()
        for client in clients:
            client.result()
    assert answer.status_code == 504, answer.text
    assert answer.json()["error_code"] == "DEADLINE_EXCEEDED" and "cancelled" in answer.json()["message"]
    assert set(small_answers) <= {200, 503} and 200 in small_answers  # small ones kept being answered
    after = deployment.wait_idle()  # nothing keeps computing for nobody
    assert after["cancelled"] > before["cancelled"]
    assert after["stopped_unfinished"] > before["stopped_unfinished"]  # stopped with work left undone
    # Stopped at a checkpoint (one residual block), not after the image's remaining seconds of work.
    assert after["max_past_deadline_s"] < 2.0


def test_overload_of_big_requests_leaves_small_ones_answered(full, deployment):
    """The issue's overload at small scale: 8 big requests at once plus small ones meanwhile."""
    side = _side_for(deployment, 0.45 * deployment.settings.timeout_s)
    with ThreadPoolExecutor(12) as pool:
        bigs = [pool.submit(requests.post, f"{full}/upscale", data=_png(side, seed), timeout=60) for seed in range(8)]
        time.sleep(0.3)
        smalls = [pool.submit(requests.post, f"{full}/upscale", data=_png(32, seed), timeout=60) for seed in range(4)]
        big_codes = [future.result().status_code for future in bigs]
        small_codes = [future.result().status_code for future in smalls]
    assert set(big_codes) <= {200, 503, 504} and 503 in big_codes
    assert set(small_codes) <= {200, 503}, small_codes
    assert deployment.wait_idle()["max_past_deadline_s"] < 2.0
