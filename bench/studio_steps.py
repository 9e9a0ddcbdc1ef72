"""Studio cost: seconds per denoising step as a browser sees them, against the engine alone.

    python bench/studio_steps.py [--steps 100] [--repeats 3]

Starts its own stack on free ports: a temporary database and var folder, an
embedded Redis, daphne and a Celery worker on the ``image`` queue. It signs a
user up and logs in over HTTP, makes a team and a project, opens the studio's
websocket (autobahn), then alternates, on the same request (default model,
fixed seed):

- the stack: the studio form is posted over HTTP, as htmx posts it, and the
  step fragments are timed as they arrive on the socket;
- the engine alone: ``generate_images`` in this process (with the image worker's
  thread count), with an ``on_step``
  that only records the time (no preview).

s/step on both sides is the time from the first step seen to the last,
divided by the steps in between: model loading and prompt encoding are not
steps. The job card gets at most ``STUDIO_PROGRESS_PER_SECOND`` updates, the
first and the last step always among them. The worker's own figure (the
engine inside the worker, with previews, the cancel check and publishing)
is read from the job row: client_vs_worker isolates the transport (Redis,
daphne, the socket), worker against engine the studio's callbacks. On a
busy machine each run swings far more than the overhead, so the JSON has
the ratio of the medians, the median of the per-run ratios and their range.
The downloaded PNG is compared pixel for pixel with the engine's image.
The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS = ("a red circle on a blue background", "a small green square", "a yellow triangle")
PASSWORD = "bench horse battery staple"  # noqa: S105 - a throwaway user in a temporary database
STEP = re.compile(r'id="job-(\d+)-progress".*?Step (\d+) of (\d+)', re.S)
CARD = re.compile(r'<article class="job-card job-(\w+)" id="job-(\d+)"')


from bench._stack import Stack, log, run_stack_bench  # noqa: E402


class Browser:
    """What the studio page does: a logged-in HTTP session that posts the form as htmx does."""

    def __init__(self, base_url: str) -> None:
        import requests

        self.base_url = base_url
        self.session = requests.Session()

    def post(self, path: str, data: dict[str, str], htmx: bool = False) -> Any:
        if "csrftoken" not in self.session.cookies:
            self.session.get(self.base_url + path)
        headers = {"Referer": self.base_url + path, "X-CSRFToken": self.session.cookies["csrftoken"]}
        if htmx:
            headers["HX-Request"] = "true"
        response = self.session.post(self.base_url + path, data=data, headers=headers)
        response.raise_for_status()
        return response

    def sign_up_and_make_a_project(self) -> int:
        self.session.get(self.base_url + "/accounts/signup/")
        self.post("/accounts/signup/", {"username": "bench", "password1": PASSWORD, "password2": PASSWORD})
        self.session.cookies.clear()  # and log in again, as a returning user would
        self.session.get(self.base_url + "/accounts/login/")
        self.post("/accounts/login/", {"username": "bench", "password": PASSWORD})
        team_url = self.post("/teams/new/", {"name": "Bench"}).url
        team_id = re.search(r"/teams/(\d+)/", team_url).group(1)  # type: ignore[union-attr]
        project_url = self.post(f"/teams/{team_id}/projects/new/", {"name": "Bench"}).url
        return int(re.search(r"/projects/(\d+)/", project_url).group(1))  # type: ignore[union-attr]

    def submit(self, project_id: int, params: dict[str, Any]) -> tuple[int, float]:
        form = {key: "" if value is None else str(value) for key, value in params.items()}
        sent_at = time.perf_counter()
        html = self.post(f"/projects/{project_id}/studio/", form, htmx=True).text
        match = CARD.search(html)
        if not match:
            errors = re.findall(r'class="error"[^>]*>([^<]+)', html)
            raise RuntimeError(f"the studio refused the request: {errors}")
        return int(match.group(2)), sent_at

    def download(self, project_id: int, asset_id: int) -> bytes:
        response = self.session.get(f"{self.base_url}/projects/{project_id}/gallery/{asset_id}/download/")
        response.raise_for_status()
        return response.content


class Socket:
    """The studio's websocket on autobahn; keeps each HTML fragment with its arrival time."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.protocol: Any = None

    async def connect(self, base_url: str, path: str, cookie: str) -> None:
        from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

        queue, opened = self.queue, asyncio.get_running_loop().create_future()

        class Protocol(WebSocketClientProtocol):
            def onOpen(self) -> None:
                opened.set_result(self)

            def onMessage(self, payload: bytes, is_binary: bool) -> None:
                queue.put_nowait((time.perf_counter(), payload.decode()))

        host, port = base_url.removeprefix("http://").split(":")
        factory = WebSocketClientFactory(f"ws://{host}:{port}{path}", origin=base_url, headers={"Cookie": cookie})
        factory.protocol = Protocol
        await asyncio.get_running_loop().create_connection(factory, host, int(port))
        self.protocol = await asyncio.wait_for(opened, 10)

    async def receive(self, timeout: float = 300) -> tuple[float, str]:
        return await asyncio.wait_for(self.queue.get(), timeout)


async def stack_run(browser: Browser, socket: Socket, project_id: int, params: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    job_id, sent_at = await loop.run_in_executor(None, browser.submit, project_id, params)
    steps: list[tuple[int, float]] = []
    previews = 0
    while True:
        at, html = await socket.receive()
        step = STEP.search(html)
        if step and int(step.group(1)) == job_id and "<article" not in html:  # a fragment, not a whole card
            steps.append((int(step.group(2)), at))
            previews += 'class="preview"' in html
        card = CARD.search(html)
        if card and int(card.group(2)) == job_id and card.group(1) not in ("queued", "running"):
            return {"id": job_id, "status": card.group(1), "sent": sent_at, "done": at, "steps": steps,
                    "previews": previews}


def engine_run(params: dict[str, Any]) -> tuple[list[float], Any]:
    from generation.image import ImageRequest, generate_images

    times: list[tuple[int, float]] = []
    result = generate_images(
        ImageRequest(**params), on_step=lambda step, total, preview: times.append((step, time.perf_counter())),
        preview=False,
    )
    return times, result


def per_step(steps: list[tuple[int, float]]) -> float:
    """Seconds per step between the first and the last step seen."""
    (first, start), (last, end) = steps[0], steps[-1]
    return (end - start) / (last - first) if last > first else 0.0


def _in_order(steps: list[int], total: int) -> bool:
    return steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == total


async def bench(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    from PIL import Image

    from generation.image import DEFAULT_IMAGE_MODEL, get_image_model_spec, load_image_model

    browser = Browser(stack.base_url)
    project_id = browser.sign_up_and_make_a_project()
    socket = Socket()
    await socket.connect(stack.base_url, f"/ws/projects/{project_id}/studio/",
                         f"sessionid={browser.session.cookies['sessionid']}")
    spec = get_image_model_spec(DEFAULT_IMAGE_MODEL)
    loaded = load_image_model(DEFAULT_IMAGE_MODEL)
    db = sqlite3.connect(stack.env["ATELIER_SQLITE_PATH"])
    base = {"negative_prompt": "", "model": spec.name, "scheduler": spec.default_scheduler, "steps": args.steps,
            "guidance_scale": spec.default_guidance, "width": spec.default_width, "height": spec.default_height,
            "num_images": 1}

    log("warming up both sides")
    warm = {**base, "prompt": PROMPTS[0], "steps": 4, "seed": 1}
    await stack_run(browser, socket, project_id, warm)
    engine_run(warm)

    rows = []
    for repeat in range(args.repeats):
        for index, prompt in enumerate(PROMPTS):
            params = {**base, "prompt": prompt, "seed": 1000 * repeat + index}
            run = await stack_run(browser, socket, project_id, params)
            times, alone = engine_run(params)
            worker_s, asset_id = db.execute(
                "select j.seconds_per_step, a.id from studio_job j join studio_asset a on a.job_id = j.id "
                "where j.id = ?", (run["id"],),
            ).fetchone()
            png = browser.download(project_id, asset_id)
            same = Image.open(io.BytesIO(png)).convert("RGB").tobytes() == alone.images[0].convert("RGB").tobytes()
            row = {
                "client_s_step": per_step(run["steps"]),
                "engine_s_step": per_step(times),
                "engine_own_s_step": alone.seconds_per_step,
                "worker_s_step": worker_s,
                "in_order": _in_order([step for step, _ in run["steps"]], args.steps),
                "updates": len(run["steps"]),
                "previews": run["previews"],
                "submit_to_done_s": run["done"] - run["sent"],
                "same_pixels": same,
            }
            rows.append(row)
            log(f"[{repeat}] job {run['id']} {run['status']}: client {row['client_s_step'] * 1000:.2f} ms/step, "
                f"engine alone {row['engine_s_step'] * 1000:.2f}, in worker {worker_s * 1000:.2f}; "
                f"{row['previews']} previews; {row['submit_to_done_s']:.2f} s submit-to-done; same pixels {same}")
    socket.protocol.sendClose()

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    client, engine = median("client_s_step"), median("engine_s_step")
    ratio = client / engine
    paired = [row["client_s_step"] / row["engine_s_step"] for row in rows]
    return {
        "bench": "studio_steps",
        "model": DEFAULT_IMAGE_MODEL,
        "model_revision": loaded.revision,
        "device": loaded.device,
        "runs": len(rows),
        "steps": args.steps,
        "size": f"{spec.default_width}x{spec.default_height}",
        "client_s_per_step": round(client, 5),
        "engine_s_per_step": round(engine, 5),
        "engine_own_s_per_step": round(median("engine_own_s_step"), 5),
        "worker_s_per_step": round(median("worker_s_step"), 5),
        "ratio": round(ratio, 3),
        "ratio_paired_median": round(statistics.median(paired), 3),
        "ratio_min": round(min(paired), 3),
        "ratio_max": round(max(paired), 3),
        "client_vs_worker": round(statistics.median(r["client_s_step"] / r["worker_s_step"] for r in rows), 4),
        "updates_per_job": statistics.median(row["updates"] for row in rows),
        "previews_per_job": statistics.median(row["previews"] for row in rows),
        "submit_to_done_s": round(median("submit_to_done_s"), 3),
        "steps_in_order": all(row["in_order"] for row in rows),
        "same_pixels_as_engine": all(row["same_pixels"] for row in rows),
        "goals_met": {"ratio<=1.05": ratio <= 1.05},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database, images)")
    args = parser.parse_args(argv)
    import os

    from generation.config import worker_threads

    # The engine alone runs with the image worker's threads: the figure is the studio path's
    # cost, not the difference between two thread counts.
    os.environ.setdefault("ATELIER_TORCH_THREADS", str(worker_threads("image")))
    return run_stack_bench(args, name="studio", workers=("image",), bench=bench)


if __name__ == "__main__":
    raise SystemExit(main())
