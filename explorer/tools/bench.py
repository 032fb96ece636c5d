"""How fast the explorer answers (`python -m explorer.tools.bench`): prints one JSON line per figure.

* rerun: a slider move on the sampling page (64 samples of the shipped toyfaces DCGAN) in the real server, driven
  like a browser tab, and through AppTest (the whole script), next to the bare work that a move cannot avoid: the
  generator's forward pass plus the diagnosis of the same batch, timed in this process, interleaved with the reruns;
* cold start: `streamlit run explorer/app.py` launched, until headless Chromium shows the first sample grid
  (without Chromium: until a fresh process has run the page once through AppTest, said so in the line);
* t-SNE of 2,000 VAE codes: computed, then the latent-map page rerun that finds it in Streamlit's cache;
* memory: resident size of one process that has opened every shipped bundle on its page.
Wall-clock figures depend on the machine and on what else runs; compare ratios taken in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from training.bench.report import emit
from training.bundle import paths as bundle_paths

REPO = bundle_paths.REPO_ROOT
APP = REPO / "explorer" / "app.py"
DEFAULT_BUNDLE = REPO / "checkpoints" / "toyfaces" / "dcgan"
TSNE_BUNDLE = REPO / "checkpoints" / "toyfaces" / "vae"
# Slider positions the rerun benchmark cycles through: each is a new distribution, so nothing comes from a cache.
MEANS = [m / 2 for m in range(-20, 21)]
# A pause between the timed paths: the server and this process each keep a team of torch threads, and a team that
# has just worked spins for a while; timing one while the other spins would measure their fight for the cores.
SETTLE_S = 0.1


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def machine() -> dict:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    return {"cores": os.cpu_count(), "cpu": model, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def rss_mib(kind: str = "VmRSS") -> float:
    line = next((line for line in _read("/proc/self/status").splitlines() if line.startswith(kind + ":")), None)
    return int(line.split()[1]) / 1024 if line else float("nan")


def rerun_vs_bare(reruns: int, n: int = 64) -> None:
    """A slider move on the sampling page against the forward pass + diagnostics it must do.

    The page runs in the real server, driven like a browser tab (explorer/tools/stream_session.py): a control inside
    an st.fragment reruns that fragment alone, and the time runs until the grid image has been fetched. The same
    page through AppTest, which always reruns the whole script, is timed too. The bare work is what every move must
    compute, on this process's torch thread with the model prepared as the app prepares it: the generator's
    forward pass of the new batch and its diagnosis against the prior batch's numbers (the page keeps those per
    model and seed)."""
    import asyncio

    from streamlit.testing.v1 import AppTest

    from explorer.core import inference, torch_worker
    from explorer.logic.diagnostics import prior_norm_reference
    from explorer.logic.sample import prior_batch_numbers, prior_samples, sample_and_diagnose
    from explorer.tools.app_server import Server, one_model
    from explorer.tools.stream_session import Session
    from training.bundle import load_bundle
    from training.latent.priors import LatentDistribution

    bundle = inference.prepare(load_bundle(DEFAULT_BUNDLE))
    prior_batch = prior_samples(bundle, n, 0)
    reference = prior_norm_reference(bundle.prior, bundle.latent_dim)
    prior_side = torch_worker.run(prior_batch_numbers, bundle, prior_batch)

    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="bundle_select").set_value(_name_of(DEFAULT_BUNDLE)).run()
    at.slider(key="n").set_value(n).run()
    if at.exception:
        raise SystemExit(f"the sampling page failed: {at.exception}")

    async def browser_tab(url: str) -> None:
        async with Session(url, timeout=600) as tab:
            for first in (True, False):
                result = await tab.rerun()
                if result.exceptions or not result.images:
                    raise SystemExit(f"the sampling page failed in the server: {result.exceptions or 'no image'}")
                if first:
                    tab.set_value("n", double_array_value=[n])
            page, full, bare, alone = [], [], [], []
            for i in range(reruns + 3):  # the first 3 warm up every path
                mean = MEANS[i % len(MEANS)] + 0.01 * (i // len(MEANS))  # never a batch computed before
                tab.set_value("mean", double_array_value=[mean])
                result = await tab.rerun()
                await asyncio.sleep(SETTLE_S)
                at.slider(key="mean").set_value(mean)
                start = time.perf_counter()
                at.run()
                full_s = time.perf_counter() - start
                await asyncio.sleep(SETTLE_S)
                # On this process's torch thread, called directly there: two threads taking turns with their own
                # OpenMP teams would slow each other down and flatter the ratio.
                bare_s = torch_worker.run(_timed, sample_and_diagnose, bundle, LatentDistribution.normal(mean, 1.0),
                                          n, 0, prior_batch=prior_batch, norm_reference=reference,
                                          prior_side=prior_side)
                await asyncio.sleep(SETTLE_S)
                if result.exceptions or not result.images or at.exception:
                    raise SystemExit(f"the sampling page failed at mean {mean}: {result.exceptions or at.exception}")
                if i >= 3:
                    page.append(result.seconds)
                    full.append(full_s)
                    bare.append(bare_s)
                    alone.append(result.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY")
        what = f"{n} samples, {DEFAULT_BUNDLE.relative_to(REPO)}, mean slider moved before each of {reruns} reruns"
        emit("rerun_after_slider_ms", 1000 * statistics.median(page), "ms", p95_ms=round(1000 * p95(page), 1),
             fragment_reruns=sum(alone), target="< 100",
             what="sampling page in the server, driven like a browser tab, until its grid image is fetched: " + what)
        emit("bare_forward_diagnostics_ms", 1000 * statistics.median(bare), "ms", p95_ms=round(1000 * p95(bare), 1),
             what="the move's generator forward pass + diagnosis against the prior batch's kept numbers, on this "
                  "process's torch thread, no Streamlit")
        # Each move's page time over the bare time measured right after it, then the median: on a machine whose
        # other load comes and goes, a ratio of two medians taken over a minute mixes quiet and busy seconds.
        emit("rerun_over_bare", statistics.median(p / b for p, b in zip(page, bare)), "ratio", target="<= 1.3",
             ratio_of_medians=round(statistics.median(page) / statistics.median(bare), 3))
        emit("apptest_full_rerun_ms", 1000 * statistics.median(full), "ms", p95_ms=round(1000 * p95(full), 1),
             what="the same page through AppTest, which reruns the whole script (title, sidebar, every widget)")
        emit("apptest_full_rerun_over_bare", statistics.median(f / b for f, b in zip(full, bare)), "ratio",
             ratio_of_medians=round(statistics.median(full) / statistics.median(bare), 3))

    with one_model(str(DEFAULT_BUNDLE)) as checkpoints:
        server = Server.start(checkpoints)
        try:
            asyncio.run(browser_tab(server.url))
        finally:
            server.stop()


def _timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def tsne(points: int) -> None:
    """t-SNE of `points` VAE codes, then the latent-map page rerun that finds the result cached."""
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from explorer.logic.vae_map import tsne_map

    with np.load(TSNE_BUNDLE / "latents.npz", allow_pickle=False) as data:
        codes = data["codes"]
    import sklearn.manifold  # noqa: F401 - imported before the clock: its import is not the t-SNE

    start = time.perf_counter()
    tsne_map(codes, max_points=points)
    emit("tsne_s", time.perf_counter() - start, "s", codes=min(points, len(codes)), dim=int(codes.shape[1]),
         target="< 10")

    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    at.switch_page("views/vae_map.py").run()
    at.sidebar.selectbox(key="bundle_select").set_value(_name_of(TSNE_BUNDLE)).run()
    at.radio(key="map_projection").set_value("t-SNE")
    start = time.perf_counter()
    at.run()  # t-SNE of the page's default number of codes
    first = time.perf_counter() - start
    wanted = min(points, len(codes)) // 100 * 100  # the slider moves in hundreds
    if wanted and at.slider(key="map_points").value != wanted:
        at.slider(key="map_points").set_value(wanted)
        start = time.perf_counter()
        at.run()
        first = time.perf_counter() - start
    at.selectbox(key="map_colour").set_value(at.selectbox(key="map_colour").options[-1])
    start = time.perf_counter()
    at.run()
    cached = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the latent-map page failed: {at.exception}")
    emit("tsne_page_first_s", first, "s", codes=at.slider(key="map_points").value,
         what="latent-map page showing a t-SNE it has not computed before")
    emit("tsne_page_cached_s", cached, "s", what="the same page recoloured: t-SNE comes from the cache")


def _name_of(path: Path) -> str:
    from explorer.core import bundles

    return next(name for name, p in bundles.available().items() if Path(p) == path)


def _showcase(capabilities) -> list[str]:
    """The pages that show a model as a class first sees it: its attribute page for a conditional GAN or an
    InfoGAN, else the sampling page (and the latent map for a VAE); none for a bundle that does not generate."""
    if capabilities is None or not capabilities.generates:
        return []
    if capabilities.conditional:
        return ["conditions"]
    if capabilities.info_codes:
        return ["codes"]
    return ["sample"] + (["vae_map"] if capabilities.has_encoder else [])


def open_every_bundle() -> None:
    """Child process: open every shipped generator on the page that shows it, then report resident memory."""
    from streamlit.testing.v1 import AppTest

    from explorer.core import bundles

    opened, models = 0, 0
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    for name, path in bundles.shipped().items():
        views = _showcase(bundles.capabilities_at(path))
        models += bool(views)
        for page in views:
            at.switch_page(f"views/{page}.py").run()
            at.sidebar.selectbox(key="bundle_select").set_value(name).run()
            if at.exception:
                raise SystemExit(f"{page} failed on {name}: {at.exception}")
            opened += 1
    print(json.dumps({"bundles": models, "page_views": opened, "rss_mib": rss_mib("VmRSS"),
                      "peak_mib": rss_mib("VmHWM")}))


def memory() -> None:
    child = subprocess.run([sys.executable, "-m", "explorer.tools.bench", "--memory-child"], cwd=REPO,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if child.returncode != 0:
        raise SystemExit(f"memory child failed:\n{child.stderr[-2000:]}")
    found = json.loads(child.stdout.strip().splitlines()[-1])
    emit("explorer_rss_mib", found["rss_mib"], "MiB", peak_mib=round(found["peak_mib"], 1), target="< 1536",
         what=f"one process after opening all {found['bundles']} shipped generators ({found['page_views']} page views, "
              "AppTest)")


def cold_start(timeout: float = 120) -> None:
    """Process start of `streamlit run explorer/app.py` until a browser shows the first page's sample grid."""
    from explorer.tools.app_server import HOST, free_port

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        _cold_start_apptest()
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1400,1200"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)  # started before the clock
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", HOST, "--server.port",
               str(port), "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]
    start = time.perf_counter()
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        answered = None
        while answered is None:
            if time.perf_counter() - start > timeout or server.poll() is not None:
                raise SystemExit("the server did not start")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        answered = time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        driver.get(url)
        while not driver.execute_script(
                "const i = document.querySelector('[data-testid=\"stImage\"] img');"
                "return i !== null && i.complete && i.naturalWidth > 0;"):
            if time.perf_counter() - start > timeout:
                raise SystemExit("no sample grid on the first page")
            time.sleep(0.02)
        shown = time.perf_counter() - start
        tracebacks = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        emit("cold_start_s", shown, "s", server_answering_s=round(answered, 3), target="< 5",
             what="streamlit run started -> headless Chromium shows the first sample grid",
             traceback_on_page=bool(tracebacks))
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=20)


def _cold_start_apptest() -> None:
    code = ("import time; t = time.perf_counter(); from streamlit.testing.v1 import AppTest; "
            f"at = AppTest.from_file({str(APP)!r}, default_timeout=300); at.run(); "
            "assert not at.exception, at.exception")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    emit("cold_start_s", time.perf_counter() - start, "s", target="< 5",
         what="no Chromium here: a fresh Python process runs the first page once through AppTest")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m explorer.tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--reruns", type=int, default=40, help="slider reruns to time (at least 30 for a p95)")
    parser.add_argument("--tsne-points", type=int, default=2000)
    parser.add_argument("--only", choices=["rerun", "cold", "tsne", "memory"], action="append",
                        help="run only these parts (repeatable)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        open_every_bundle()
        return
    if args.reruns < 1 or args.tsne_points < 4:
        parser.error("--reruns must be at least 1 and --tsne-points at least 4")
    for needed in (DEFAULT_BUNDLE, TSNE_BUNDLE):
        if not (needed / "config.json").exists():
            parser.error(f"{needed} is missing: the benchmark runs on the shipped bundles")
    emit("machine", None, "", **machine())
    parts = args.only or ["cold", "rerun", "tsne", "memory"]
    for part, run in (("cold", cold_start), ("rerun", lambda: rerun_vs_bare(args.reruns)),
                      ("tsne", lambda: tsne(args.tsne_points)), ("memory", memory)):
        if part in parts:
            run()


if __name__ == "__main__":
    main()
