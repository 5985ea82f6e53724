"""pdf2text throughput through the HTTP API ÷ bare pypdf on the same files, measured in the same run.

The API side is a real gunicorn server running the platform, called with httpx: ``POST /v1/pdf2text`` (the
upload, its checks and page count), then ``GET /v1/pdf2text/{id}?wait=30`` until the job has ended. With
``REDIS_URL`` set the job is asynchronous: a Celery worker (``-Q ingest``, prefork, one process) runs it and the
POST answers 202 at once; without it the platform runs embedded and the POST itself runs the job. The bare
side opens the same file with pypdf and extracts every page (plain mode, as the job does), in a fresh
interpreter kept up for the run. (POST) is the upload's share of the API time: checks and page count.
The two alternate, one call each; the medians are compared. Goal: ratio >= 0.90 for documents of 20+ pages.

The shared fixtures have one document over 20 pages (GeoTopo, 117 pages); two more are built here by
concatenating fixture pages with pypdf (24 and 57 pages). A one-page document shows the fixed cost of a job.

    REDIS_URL=redis://127.0.0.1:6379/13 python bench/pdf2text.py [--runs 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, bench_port, bench_workdir, gunicorn_command, setup_django

PDF_ROOT = ROOT.parent / "shared" / "fixtures" / "pdf"
GOAL = 0.90


def build_documents(workdir: Path) -> list[tuple[str, Path]]:
    from pypdf import PdfReader, PdfWriter

    def concatenated(name: str, sources: list[str]) -> Path:
        writer = PdfWriter()
        for source in sources:
            writer.append(PdfReader(PDF_ROOT / source))
        path = workdir / name
        with path.open("wb") as out:
            writer.write(out)
        return path

    vicksburg = "pypdf/resources/Seige_of_Vicksburg_Sample_OCR.pdf"
    geobase = "pypdf/resources/GeoBase_NHNC1_Data_Model_UML_EN.pdf"
    return [
        ("crazyones (fixed overhead)", PDF_ROOT / "pypdf/resources/crazyones.pdf"),
        ("vicksburg x4 (OCR text)", concatenated("vicksburg-x4.pdf", [vicksburg] * 4)),
        ("GeoBase x3 (UML spec)", concatenated("geobase-x3.pdf", [geobase] * 3)),
        ("GeoTopo (LaTeX thesis)", PDF_ROOT / "py-pdf-sample-files/009-pdflatex-geotopo/GeoTopo-komprimiert.pdf"),
    ]


BARE_SCRIPT = """
import logging, sys, time
logging.disable(logging.WARNING)
from pypdf import PdfReader
for line in sys.stdin:
    start = time.perf_counter()
    reader = PdfReader(line.strip())
    pages = [page.extract_text(extraction_mode="plain") for page in reader.pages]
    print(time.perf_counter() - start, len(pages), flush=True)
"""


class BarePypdf:
    """pypdf alone, in a fresh interpreter of its own that stays up (pypdf imported once, a small heap, like the
    job's child process but without its start-up): the time of opening the file and extracting every page."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", BARE_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def extract(self, path: Path) -> tuple[float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        seconds, pages = self.process.stdout.readline().split()
        return float(seconds), int(pages)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = bench_workdir("bench-pdf2text-", keep_database_url=True)
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    setup_django()
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    import httpx
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from apps.accounts.services import api_key_create

    user, _ = get_user_model().objects.get_or_create(username="bench")
    key = api_key_create(owner=user, rate_limit_per_minute=10**6).plaintext
    documents = build_documents(workdir)
    mode = "worker (Redis, async job)" if settings.REDIS_URL else "embedded (job runs inside the POST)"

    port = bench_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    processes = [start(gunicorn_command(port=port, threads=4), env, workdir / "gunicorn.log")]
    if settings.REDIS_URL:
        processes.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tigerplatform",
                    "worker",
                    "-Q",
                    "ingest",
                    "-c",
                    "1",
                    "-l",
                    "warning",
                    "--hostname",
                    f"bench-{port}@%h",
                ],
                env,
                workdir / "worker.log",
            )
        )
    results: list[tuple[str, int, float, float, float]] = []
    bare = BarePypdf()
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=120, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the platform did not become ready; logs in {workdir}")
                time.sleep(0.2)

            def api_extract(path: Path) -> tuple[float, int, float]:
                start_s = time.perf_counter()
                with path.open("rb") as pdf:
                    response = http.post("/v1/pdf2text", files={"file": (path.name, pdf, "application/pdf")})
                response.raise_for_status()
                posted = time.perf_counter() - start_s
                body = response.json()
                while body["status"] in ("queued", "running"):
                    response = http.get(f"/v1/pdf2text/{body['id']}", params={"wait": 30})
                    response.raise_for_status()
                    body = response.json()
                elapsed = time.perf_counter() - start_s
                if body["status"] != "succeeded":
                    raise RuntimeError(f"{path.name}: {body['error']}")
                return elapsed, len(body["pages"]), posted

            for label, path in documents:
                api_extract(path), bare.extract(path)  # warm up both (page cache, worker imports)
                api_times, post_times, bare_times, pages = [], [], [], set()
                for _ in range(args.runs):
                    elapsed, count, posted = api_extract(path)
                    api_times.append(elapsed)
                    post_times.append(posted)
                    pages.add(count)
                    elapsed, count = bare.extract(path)
                    bare_times.append(elapsed)
                    pages.add(count)
                if len(pages) != 1:
                    raise RuntimeError(f"{label}: page counts differ between API and pypdf: {pages}")
                results.append(
                    (
                        label,
                        pages.pop(),
                        statistics.median(api_times),
                        statistics.median(post_times),
                        statistics.median(bare_times),
                    )
                )
    finally:
        bare.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()

    print(f"mode: {mode}; {args.runs} runs per file, medians; bare pypdf in its own warm interpreter, plain mode")
    print(
        f"{'document':28} {'pages':>5} {'API s':>7} {'(POST)':>7} {'bare s':>7} {'API p/s':>8} {'bare p/s':>8} "
        f"{'ratio':>6}"
    )
    for label, pages, api_s, post_s, bare_s in results:
        print(
            f"{label:28} {pages:5d} {api_s:7.3f} {post_s:7.3f} {bare_s:7.3f} {pages / api_s:8.1f} "
            f"{pages / bare_s:8.1f} {bare_s / api_s:6.3f}"
        )
    long = [r for r in results if r[1] >= 20]
    total_pages = sum(r[1] for r in long)
    api_total, bare_total = sum(r[2] for r in long), sum(r[4] for r in long)
    print(
        f"documents of 20+ pages: API {total_pages / api_total:.1f} pages/s, bare pypdf "
        f"{total_pages / bare_total:.1f} pages/s, ratio {bare_total / api_total:.3f} (goal >= {GOAL:.2f})"
    )
    print(
        f"fixed cost per job (1-page document, API - bare): {(results[0][2] - results[0][4]) * 1000:.0f} ms; "
        f"extraction processes per job: up to {settings.PDF2TEXT_MAX_CHILDREN}, "
        f"{settings.PDF2TEXT_PAGES_PER_CHILD}+ pages each"
    )


if __name__ == "__main__":
    main()
