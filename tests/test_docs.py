"""The user documentation (README.md and docs/): every relative link leads to a file that exists (and to a
heading in it, when it names one), and every command in a code block runs: `dss ...` lines in the --help
examples' sandbox with the same cheap overrides (test_help.CHEAP), `make ...` lines as the `dss` commands that
`make -n` prints, `python benchmarks/...` lines in this process. What cannot run offline is in SKIP, with why."""
from __future__ import annotations

import re
import runpy
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from test_help import cheap, make, run_cli

from dss.testing.release import write_release

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNERS = ("dss", ".venv/bin/dss", "make", ".venv/bin/python", "python", "bash")

# documented commands this test does not run, each with the reason
SKIP = {
    "dss data download": "fetches the release from the network (the --archive form runs in test_help)",
    "dss train --task cqa --method dss --model google/t5-v1_1-base": "a hub checkpoint",
    "dss train --task cqa --method dss --model google/t5-v1_1-xl --lora-r 16 --gradient-checkpointing "
    "--batch-size 32 --grad-accum 4": "a hub checkpoint (and peft)",
    "dss bench --config configs/bench/paper.yaml --shard 3/8 --launcher accelerate --launch-args "
    "\"--num_processes 8\"": "the paper's sweep: hub checkpoints, the full release and 8 GPUs",
    "bash benchmarks/gpu_check.sh": "a CUDA GPU",
    "bash benchmarks/gpu_check.sh --dry-run": "62-81 s of CPU; tests/test_gpu_check.py runs the dry run",
    ".venv/bin/python benchmarks/eval_modes.py runs/esnli-student --limit 1000 --repeats 5 --rationale-file "
    "runs/esnli-teacher-test.jsonl": "a trained e-SNLI student (an hour of CPU); tests/test_eval_bench.py runs "
                                     "the script",
    ".venv/bin/python benchmarks/runtime_choice.py runs/esnli-student":
        "onnx and onnxruntime, which dss does not install, and a trained e-SNLI student",
    ".venv/bin/python benchmarks/eval_modes.py runs/bench-esnli/esnli/tiny/dss-gold/f1-s0 --repeats 3":
        "a cell of the e-SNLI study (make bench-esnli, an hour of CPU); tests/test_eval_bench.py runs the script",
}


# ------------------------------------------------------------------------------------------------ reading
def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command) for each line of the fenced and indented code blocks; a line ending in a
    backslash continues on the next, a trailing `  # comment` is dropped."""
    out, fenced, prev_blank, in_block = [], False, True, False
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        indented = line.startswith("    ") and (in_block or prev_blank)
        in_block = indented or (in_block and not line.strip())
        prev_blank = not line.strip()
        if fenced or indented:
            out.append((i, line.strip()))
    joined = []
    for n, line in out:
        if joined and joined[-1][1].endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1].rstrip() + " " + line)
        else:
            joined.append((n, line))
    return [(n, line.split("  #")[0].strip()) for n, line in joined]


def commands() -> dict[str, str]:
    """command -> where it is first documented (file:line), for every code line a runner starts; `[...]`
    after a space marks an optional part, which is left out."""
    found = {}
    for path in DOCS:
        for n, line in code_lines(path.read_text()):
            if line.split(" ", 1)[0] in RUNNERS:
                cmd = re.sub(r"(?<=\s)\[[^\]]*\]", "", line)
                found.setdefault(" ".join(cmd.split()), f"{path.relative_to(ROOT)}:{n}")
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_every_relative_link_resolves():
    bad = []
    for path in DOCS:
        text = re.sub(r"`[^`\n]*`", "", path.read_text())  # code spans hold no links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            where = f"{path.relative_to(ROOT)}: ({target})"
            if not dest.exists():
                bad.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, "\n".join(bad)


def test_every_page_is_linked_from_the_readme_or_the_docs_index():
    linked = set()
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)", path.read_text()):
            linked.add((path.parent / target).resolve())
    assert not [str(p.relative_to(ROOT)) for p in DOCS[1:] if p not in linked]


def test_the_skip_list_names_only_documented_commands():
    assert not set(SKIP) - set(commands())


def test_every_make_target_named_in_the_docs_exists():
    targets = set(re.findall(r"^([\w-]+(?: [\w-]+)*):", (ROOT / "Makefile").read_text(), flags=re.M))
    targets = {t for group in targets for t in group.split()}
    named = {m for path in DOCS for m in re.findall(r"`make ([a-z][\w-]*)", path.read_text())}
    assert named and not named - targets


# ------------------------------------------------------------------------------------------------ running
def write_nli_and_svamp(root: Path) -> None:
    """Tiny e-SNLI and SVAMP folders in the release layout, beside the sandbox's tiny cqa."""
    words = ["entailment", "neutral", "contradiction"]
    for split, n in {"train": 40, "valid": 10, "test": 10}.items():
        rows = [{"premise": f"a man {i} walks a dog .", "hypothesis": f"a man {i} is outside .", "label": i % 3}
                for i in range(n)]
        answers = [f"He walks.\nAnswer: {words[i % 3]}\n\nPremise: x" for i in range(n)]
        write_release(root, "esnli", split, rows, answers)
    for split, n in {"train": 40, "test": 10}.items():
        rows = [{"input": f"Tom has {i} apples and gets 2 more . How many ?", "label": f"( {i}.0 + 2.0 )"}
                for i in range(n)]
        answers = [f"{i} and 2 more. The answer is ({i} + 2).\n\nQ: x" for i in range(n)]
        write_release(root, "svamp", split, rows, answers)


@pytest.fixture
def docs_sandbox(sandbox, tmp_path, monkeypatch):
    """test_help's sandbox, plus what the docs name: e-SNLI and SVAMP beside cqa in DSS_DATA_DIR, which is
    also ../shared/dss-data, and benchmarks/."""
    write_nli_and_svamp(tmp_path)
    shared = tmp_path / "shared" / "dss-data"
    shared.mkdir(parents=True)
    for task in ("cqa", "esnli", "svamp"):
        (shared / task).symlink_to(tmp_path / task)
    (sandbox / "benchmarks").symlink_to(ROOT / "benchmarks")
    # `dss plot runs/bench-svamp` follows a sweep that runs here as a dry run: a finished one stands in
    shutil.copytree(sandbox / "runs" / "demo", sandbox / "runs" / "bench-svamp")
    monkeypatch.setenv("DSS_DATA_DIR", str(shared))
    for key in ("GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(key, "k")
    return sandbox


def expand(cmd: str) -> list[str]:
    """The lines a documented command runs here: itself, or the `dss` lines that `make -n` prints for it."""
    words = shlex.split(cmd)
    if words[0] != "make":
        return [re.sub(r"^\.venv/bin/dss ", "dss ", cmd)]
    out = make(*words[1:])
    if out.returncode:
        raise RuntimeError(f"make -n: {out.stderr.strip()}")
    return ["dss " + line.split("/dss ", 1)[1] for line in out.stdout.splitlines()
            if line.split(" ", 1)[0].endswith("/dss")]


def phase(line: str) -> int:
    """Producers first: scripts and extractions whose output a later command reads, then trainers (whose
    students predict uses), then the rest."""
    words = shlex.split(line)
    if words[0] != "dss" or (words[1] == "extract" and "--out" in words):
        return 0
    return 1 if words[1] == "train" else 2


def run_script(words: list[str]) -> int:
    """`python benchmarks/X.py ARGS` in this process (it would spend seconds importing torch again)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", words[1:])
        try:
            runpy.run_path(words[1], run_name="__main__")
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else int(e.code is not None)
    return 0


def run_dss(line: str, teacher) -> int:
    """`dss ...` with CHEAP's overrides; an extraction whose output a later command reads is asked of the
    loopback teacher instead of dry-run."""
    argv = cheap(line)
    if argv[0] == "extract" and "--out" in argv:
        argv.remove("--dry-run")
        if "--base-url" in argv:
            del argv[argv.index("--base-url"):argv.index("--base-url") + 2]
        provider = argv[argv.index("--teacher") + 1].split(":")[0]
        argv += ["--base-url", teacher.gemini_url if provider == "gemini" else teacher.openai_url]
    return run_cli(argv)


@pytest.mark.slow
def test_every_documented_command_runs(docs_sandbox, capsys):
    from dss.testing.fake_teacher import FakeTeacher
    todo, failures = {}, []
    for cmd, where in commands().items():
        if cmd in SKIP:
            continue
        try:
            for line in expand(cmd):
                todo.setdefault(line, f"{where} ({cmd})")
        except RuntimeError as e:
            failures.append(f"{where}: {cmd}  ->  {e}")
    assert len(todo) >= 40
    with FakeTeacher() as teacher:
        for line in sorted(todo, key=phase):
            words = shlex.split(line)
            try:
                if words[0] == "dss":
                    rc = run_dss(line, teacher)
                elif words[0].endswith("python") and words[1].startswith("benchmarks/"):
                    rc = run_script(words)
                else:
                    rc = f"no way to run it here: run it, or put it in SKIP with why ({words[0]})"
            except Exception as e:  # noqa: BLE001 -- one broken command must not hide the others
                rc = repr(e)
            err = capsys.readouterr().err.strip()
            if rc != 0:
                failures.append(f"{todo[line]}: {line}  ->  exit {rc}: {err.splitlines()[-1:] if err else ''}")
    assert not failures, "\n".join(failures)
