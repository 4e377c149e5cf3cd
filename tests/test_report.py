"""`dss report`: the page of a real miniature sweep (and of one of its runs, and of an active study) holds its
tables, figures and sample, escapes what the data says, loads nothing from elsewhere, and renders in a real
browser: Debian's headless Chromium (installed by .ci/run; the browser test skips without it)."""
from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dss.commands.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# headless, as root, offline: nothing of the browser's own may reach for the network
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]
VOID = {"meta", "img", "input", "br", "hr", "link"}
SAMPLE = 10


class Page(HTMLParser):
    """The tags of a page, and nesting errors: a closing tag that is not the innermost open one."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.open, self.errors = [], [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.open[-1] if self.open else None}>")
        else:
            self.open.pop()

    def all(self, tag: str, attr: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (attr is None or attr in a)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """standard vs DSS on the demo task, 2 fractions x 2 seeds, a tiny student and 10 steps: answers that are
    partly right (about half the test examples), real run folders, models that write rationales."""
    out = tmp_path_factory.mktemp("report") / "sweep"
    assert main(["bench", "--tasks", "demo", "--methods", "standard,dss", "--fractions", "0.125,0.25", "--seeds",
                 "0,1", "--output-dir", str(out), "train.max_steps=10", "train.eval_steps=10", "train.batch_size=16",
                 "train.lr=0.005", "train.d_model=32", "train.heads=2", "train.d_ff=64", "train.layers=1",
                 "train.vocab_size=200", "train.max_eval_examples=24", "train.tensorboard=false",
                 "train.eval_max_new_tokens=4", "train.max_target_length=24"]) == 0
    return out


@pytest.fixture(scope="module")
def report(sweep) -> Path:
    assert main(["report", str(sweep), "--sample", str(SAMPLE)]) == 0
    return sweep / "report.html"


def check_self_contained(html: str, page: Page) -> None:
    assert not page.errors and not page.open, page.errors[:5] + page.open
    assert "http://" not in html and "https://" not in html
    assert len(page.all("script")) == 1 and not page.all("script", "src") and not page.all("link")
    assert all(a["src"].startswith("data:image/png;base64,") for a in page.all("img"))


@pytest.mark.slow
def test_a_sweep_page_holds_its_tables_figures_and_sample(sweep, report):
    html = report.read_text(encoding="utf-8")
    page = Page(html)
    check_self_contained(html, page)
    assert len(page.all("img")) == 1  # curves.png's figure: no last-model accuracy, one student, no teacher spend
    for method in ("standard fine-tuning", "dss (gold labels)"):
        assert html.count(f"<th>{method}</th>") == 2  # the test and the valid table
    assert "<th>12.5 %\n(200)</th>" in html and "<th>25 %\n(400)</th>" in html and 'title="seed: s0 ' in html
    assert "chance 50.0 %" in html and "test accuracy 100.0 %" in html  # the demo's code-written teacher
    rows = page.all("tr", "data-wrong")
    assert len(rows) == SAMPLE
    # the sample is the DSS cell at the largest fraction, seed 0; its answers and correctness are the run's own
    run = sweep / "demo" / "tiny" / "dss-gold" / "f0.25-s0"
    assert f"{run}/model (its rationale task, greedy)" in html
    preds = {p["id"]: p for p in map(json.loads, (run / "predictions.jsonl").read_text().splitlines())}
    wrong = [not preds[r["title"]]["correct"] for _, r in page.tags if "title" in r and r["title"] in preds]
    assert [r["data-wrong"] == "1" for r in rows] == wrong
    assert html.count('<div class="why">') == 2 * SAMPLE  # the teacher's rationales and the student's own
    assert "git commit" in html and "data fingerprint" in html and "max_steps" in html


@pytest.mark.slow
def test_untrusted_text_stays_text_and_a_run_folder_has_its_page(sweep, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sweep / "demo" / "tiny" / "dss-gold" / "f0.25-s0", run)
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    preds[0].update(input="<script>alert(1)</script>", prediction='</td><img src=x onerror="alert(2)">')
    (run / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    assert main(["report", str(run), "--sample", "100", "--no-rationales", "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    page = Page(html)
    check_self_contained(html, page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&lt;/td&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert len(page.all("tr", "data-wrong")) == len(preds)  # all of them: fewer than --sample
    assert len(page.all("img")) == 1 and "best step / steps" in html  # the run's curves and results
    assert "not generated (--no-rationales)" in html


@pytest.mark.slow
def test_the_cost_per_prediction_is_the_runs_throughput_at_the_price_against_the_teachers_answers(sweep, tmp_path):
    run = sweep / "demo" / "tiny" / "dss-gold" / "f0.25-s0"
    eps = json.loads((run / "results.json").read_text())["eval_examples_per_second"]
    assert main(["report", str(run), "--sample", "0", "--price-per-hour", "3.6", "--out",
                 str(tmp_path / "a.html")]) == 0
    html = (tmp_path / "a.html").read_text(encoding="utf-8")
    # 1e6 predictions at eps a second, at $0.001 a second; the demo's code-written teacher has no price
    assert f"<td>${1e6 / eps * 3.6 / 3600:.4f}</td>" in html and "no <code>dss extract</code> output prices" in html
    teacher = tmp_path / "teacher.jsonl"
    assert main(["extract", "--teacher", "replay:gemini-3.5-flash", "--replay-from", "task", "--task", "demo",
                 "--split", "test", "--limit", "20", "--out", str(teacher)]) == 0
    assert main(["report", str(run), "--sample", "0", "--teacher-file", str(teacher), "--out",
                 str(tmp_path / "b.html")]) == 0
    html = (tmp_path / "b.html").read_text(encoding="utf-8")
    records = [json.loads(line) for line in teacher.read_text().splitlines()]
    from dss.teacher.cost import answers_spend
    usd = answers_spend(records)["cost_usd"]
    assert f"<td>${usd / 20 * 1e6:,.2f}</td>" in html and "20 answers" in html and "estimated" in html
    assert main(["report", str(run), "--price-per-hour", "0", "--out", str(tmp_path / "c.html")]) == 2


def test_an_active_study_and_a_sweep_without_its_cells(tmp_path):
    """Folders whose runs are elsewhere still get their tables and figures, and say why there is no sample."""
    from dss.active.study import rows_csv
    from dss.bench.report import rows_to_csv
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "results.csv").write_text(rows_csv([
        {"strategy": s, "seed": seed, "round": k, "answered": 100 * (k + 1), "requests": 100 * (k + 1),
         "cost_usd": 1e-4 * (k + 1), "test_accuracy": 0.6 + 0.1 * k + 0.01 * seed, "run_dir": "gone"}
        for s in ("random", "uncertainty") for seed in (0, 1) for k in range(3)]))
    assert main(["report", str(tmp_path / "study")]) == 0
    html = (tmp_path / "study" / "report.html").read_text(encoding="utf-8")
    check_self_contained(html, Page(html))
    assert "<th>round 2</th>" in html and "<th>uncertainty</th>" in html and "80.5 ± 0.5" in html
    assert "no round&#x27;s run folder is here" in html and "300 ex, 300 req, $0.0003" in html
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "results.csv").write_text(rows_to_csv([
        {"task": "demo", "method": "dss", "labels": "gold", "model": "tiny", "fraction": 1.0, "seed": 0,
         "valid_accuracy": 0.5, "test_accuracy": 0.5, "chance": 0.5, "run_dir": "elsewhere/f1-s0"}]))
    assert main(["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "s.html")]) == 0
    assert "no cell&#x27;s run folder is here" in (tmp_path / "s.html").read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "nothing")]) == 2


def chromium(url: str, tmp: Path, *args: str) -> str:
    out = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args, url],
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run does)")
def test_the_page_renders_in_a_browser(report, tmp_path):
    import matplotlib.image
    for filter_, attr in (("wrong", "data-wrong"), ("disagree", "data-disagree")):
        dom = Page(chromium(f"{report.as_uri()}#filter={filter_}", tmp_path, "--dump-dom"))
        body = dom.all("body")[0]
        assert body.get("data-ready") == "1" and body.get("data-filter") == filter_  # the script ran
        assert body.get("data-figures") == "1"  # the figure decoded
        rows = dom.all("tr", "data-wrong")
        assert len(rows) == SAMPLE
        shown = [r for r in rows if "hidden" not in r]
        assert shown == [r for r in rows if r[attr] == "1"] and shown  # 10 steps leave some answers wrong
    shot = tmp_path / "report.png"
    chromium(report.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    pixels = matplotlib.image.imread(shot)[..., :3]  # [height, width, rgb] in 0..1
    ink = (pixels < 0.9).any(axis=-1)
    assert pixels.shape[:2] == (2000, 1280) and 0.03 < ink.mean() < 0.6, ink.mean()  # neither blank nor a smear
    colour = pixels.max(axis=-1) - pixels.min(axis=-1) > 0.4  # the curves' lines and the sample's marks
    assert colour.sum() > 500
