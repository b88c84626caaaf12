"""Normalising and comparing two recordings of the behaviour check: console lines, JSON values, tensors.

Used by ``python -m dev.behaviour_check compare`` (see :mod:`dev.behaviour_check`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

#: Floats in JSON/YAML/JSONL files are equal when within these (math.isclose).
REL_TOL, ABS_TOL = 1e-6, 1e-7
#: Tensors in .safetensors files: ``|a - b| <= TENSOR_ATOL + TENSOR_RTOL * |b|`` elementwise.
TENSOR_RTOL, TENSOR_ATOL = 1e-5, 1e-6
#: JSON keys dropped before comparing (case-insensitive substrings): wall-clock timings, throughput,
#: memory, dates, host and version descriptions. ``time`` also drops ``timeout`` options and
#: ``timestamp``s; ``rss`` drops the whole RSS sample series of ``bench serve``.
VOLATILE_KEY_PARTS = (
    "seconds", "time", "runtime", "per_s", "per_second", "_ms", "latency", "speedup", "rss", "memory",
    "_mb", "_mib", "flops", "mfu", "date", "load_average", "hostname", "platform", "processor", "version",
    "machine", "forward_calls", "timing", "step_s", "overhead",
)  # fmt: skip
#: Only existence is compared for these (pictures, pickles, TensorBoard event files).
EXISTENCE_ONLY = (".png", ".jpg", ".svg", ".pdf", ".bin", ".pt", ".pth", ".pkl", ".npy")
TEXT_SUFFIXES = (".md", ".txt", ".html", ".csv", ".log", ".jinja", ".py", "")
MAX_DIFFS_PER_FILE = 20

# Console and text normalisation, applied in this order (see normalise_text).
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
PROGRESS = re.compile(r"━|\d+%\|[^|]*\||\d+(\.\d+)?\s?(it/s|s/it)\b")
SUBS = [
    (re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+"), "data:image/<IMAGE>"),
    (re.compile(r"/tmp/[\w.\-/]+"), "<TMP>"),
    (re.compile(r"\.py:\d+:"), ".py:<L>:"),  # line numbers of warning locations
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<DATE>"),
    (re.compile(r"\b\d+:\d{2}(:\d{2})?(\.\d+)?\b"), "<DURATION>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(KiB|MiB|GiB|KB|MB|GB)\b"), "<MEM>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|seconds|min|minutes|h)\b"), "<TIME>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(\w+)/s\b"), r"<RATE> \2/s"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<PORT>"),
    (re.compile(r"process \[\d+\]"), "process [<PID>]"),
    (re.compile(r"tfevents\.[\w.\-]+"), "tfevents.<ID>"),
    (re.compile(r"(/cache/[\w/]*?)[0-9a-f]{12,}"), r"\1<HASH>"),  # cache keys hash the recording's paths
]
NUMBER = re.compile(r"\d[\d,]*(\.\d+)?(e[-+]?\d+)?×?")


# ---------------------------------------------------------------- normalising
def normalise_text(text: str, root: str = "", source: str = "", volatile_numbers: bool = False) -> list[str]:
    """Console or file text as comparable lines.

    ANSI codes go; a carriage return keeps only the last frame of its line; progress-bar lines
    (rich bars, tqdm percentages, it/s) are dropped; the recording folder and the source checkout
    become ``<DIR>``/``<SRC>`` (the interpreter's environment ``<VENV>``), other /tmp paths ``<TMP>``;
    dates, durations, memory figures, times
    (``12.3 s``), rates (``120 requests/s``), ports, process ids and warning line numbers become
    placeholders, and so do cache keys (they hash paths); trailing blanks and empty lines go. Warnings
    and every other line are kept. With ``volatile_numbers`` (the bench commands, which print measured
    speeds) every number is ``<N>`` and runs of blanks are one (table columns widen with the numbers).
    """
    lines = []
    for raw in ANSI.sub("", text).split("\n"):
        line = raw.split("\r")[-1].rstrip()
        if not line.strip() or PROGRESS.search(line):
            continue
        # the interpreter's environment first: it may sit inside the source checkout (.venv)
        for old, new in ((sys.prefix, "<VENV>"), (root, "<DIR>"), (source, "<SRC>")):
            if old:
                line = line.replace(old, new)
        for pattern, repl in SUBS:
            line = pattern.sub(repl, line)
        lines.append(" ".join(NUMBER.sub("<N>", line).split()) if volatile_numbers else line)
    return lines


def drop_volatile(value: Any, norm: Callable[[str], list[str]] | None = None) -> Any:
    """``value`` without the keys named by :data:`VOLATILE_KEY_PARTS`, at any depth.

    With ``norm`` (:func:`normalise_text` bound to a recording), strings are normalised too.
    """
    if isinstance(value, dict):
        return {k: drop_volatile(v, norm) for k, v in value.items()
                if not any(p in str(k).lower() for p in VOLATILE_KEY_PARTS)}  # fmt: skip
    if isinstance(value, list):
        return [drop_volatile(v, norm) for v in value]
    if isinstance(value, str) and norm is not None:
        return "\n".join(norm(value))
    return value


# ---------------------------------------------------------------- comparing
def diff_lines(base: list[str], new: list[str]) -> list[str]:
    """The lines that differ, as ``- base`` / ``+ new``."""
    out = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, base, new, autojunk=False).get_opcodes():
        if op != "equal":
            out += [f"- {line:.300}" for line in base[i1:i2]] + [f"+ {line:.300}" for line in new[j1:j2]]
    return out


def diff_values(base: Any, new: Any, path: str = "$") -> list[str]:
    """Differences between two parsed JSON values; floats within REL_TOL/ABS_TOL are equal."""
    if isinstance(base, dict) and isinstance(new, dict):
        out = [f"{path}.{k}: missing (base {json.dumps(base[k])[:80]})" for k in base if k not in new]
        out += [f"{path}.{k}: added ({json.dumps(new[k])[:80]})" for k in new if k not in base]
        for k in base:
            if k in new:
                out += diff_values(base[k], new[k], f"{path}.{k}")
        return out
    if isinstance(base, list) and isinstance(new, list):
        out = [f"{path}: {len(base)} items, now {len(new)}"] if len(base) != len(new) else []
        for i, (a, b) in enumerate(zip(base, new, strict=False)):
            out += diff_values(a, b, f"{path}[{i}]")
        return out
    numbers = (int, float)
    if isinstance(base, numbers) and isinstance(new, numbers) and not isinstance(base, bool):
        if isinstance(new, bool) or not (
            (math.isnan(base) and math.isnan(new))
            or math.isclose(base, new, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        ):
            return [f"{path}: {base!r} != {new!r}"]
        return []
    return [] if base == new and type(base) is type(new) else [f"{path}: {base!r:.120} != {new!r:.120}"]


def load_structured(path: Path) -> Any:
    """A JSON, JSONL or YAML file as parsed data."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def diff_tensors(base: Path, new: Path) -> list[str]:
    """Tensor-by-tensor differences of two safetensors files (names, shapes, dtypes, values)."""
    from safetensors.torch import load_file

    a, b = load_file(str(base)), load_file(str(new))
    out = [f"tensor {k}: missing" for k in a if k not in b] + [f"tensor {k}: added" for k in b if k not in a]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            out.append(f"tensor {k}: {tuple(x.shape)} {x.dtype} != {tuple(y.shape)} {y.dtype}")
        elif not x.double().allclose(y.double(), rtol=TENSOR_RTOL, atol=TENSOR_ATOL, equal_nan=True):
            out.append(f"tensor {k}: max |diff| {(x.double() - y.double()).abs().max().item():.3g}")
    return out


def diff_file(
    base: Path, new: Path, norm_base: Callable[[str], list[str]], norm_new: Callable[[str], list[str]]
) -> list[str]:
    """Differences between one output file of two recordings, by its type."""
    suffix = base.suffix.lower()
    if not (base.is_file() and new.is_file()):
        return [] if base.is_file() == new.is_file() else [f"file {'missing' if base.is_file() else 'added'}"]
    if suffix in EXISTENCE_ONLY or "tfevents" in base.name:
        return []
    if suffix == ".safetensors":
        return diff_tensors(base, new)
    try:
        if suffix in (".json", ".jsonl", ".yaml", ".yml"):
            a, b = (
                drop_volatile(load_structured(base), norm_base),
                drop_volatile(load_structured(new), norm_new),
            )
            return diff_values(a, b) if a != b else []
        if suffix in TEXT_SUFFIXES:
            a, b = base.read_text(errors="replace"), new.read_text(errors="replace")
            if suffix == ".html":  # one element a line, so that a difference names its element
                a, b = a.replace("><", ">\n<"), b.replace("><", ">\n<")
            return diff_lines(norm_base(a), norm_new(b))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"could not be read: {exc}"] if base.read_bytes() != new.read_bytes() else []
    return [] if base.read_bytes() == new.read_bytes() else ["bytes differ"]


def compare_records(
    base: dict[str, Any], new: dict[str, Any], strict_help: bool = False
) -> tuple[list, list]:
    """(differences, help differences) between two recordings, each a printable line."""
    diffs: list[str] = []
    b_root, n_root = Path(base["root"]), Path(new["root"])
    cmds_b = {c["name"]: c for c in base["commands"]}
    cmds_n = {c["name"]: c for c in new["commands"]}
    diffs += [f"[{n}] command missing" for n in cmds_b if n not in cmds_n]
    diffs += [f"[{n}] command added" for n in cmds_n if n not in cmds_b]
    seen: set[str] = set()
    for name in (n for n in cmds_b if n in cmds_n):
        b, n = cmds_b[name], cmds_n[name]
        vol = b.get("volatile_numbers", False)

        def nb(s: str, vol: bool = vol) -> list[str]:
            return normalise_text(s, base["root"], base["source"], vol)

        def nn(s: str, vol: bool = vol) -> list[str]:
            return normalise_text(s, new["root"], new["source"], vol)

        if b["exit_code"] != n["exit_code"]:
            diffs.append(f"[{name}] exit code {b['exit_code']} != {n['exit_code']}")
        for stream in ("stdout", "stderr"):
            diffs += [f"[{name}] {stream}: {line}" for line in diff_lines(nb(b[stream]), nn(n[stream]))]
        fb, fn = ({"".join(normalise_text(f)) for f in c["files"]} for c in (b, n))  # tfevents names
        diffs += [f"[{name}] file missing: {f}" for f in sorted(fb - fn)]
        diffs += [f"[{name}] file added: {f}" for f in sorted(fn - fb)]
        for f in sorted(set(b["files"]) & set(n["files"]) - seen):
            seen.add(f)
            found = diff_file(b_root / "work" / f, n_root / "work" / f, nb, nn)
            diffs += [f"[{name}] {f}: {d}" for d in found[:MAX_DIFFS_PER_FILE]]
            if len(found) > MAX_DIFFS_PER_FILE:
                diffs.append(f"[{name}] {f}: ... {len(found) - MAX_DIFFS_PER_FILE} more differences")
    helps = []
    for key in sorted(set(base["help"]) | set(new["help"])):
        hb = normalise_text(base["help"].get(key, ""), base["root"], base["source"])
        hn = normalise_text(new["help"].get(key, ""), new["root"], new["source"])
        helps += [f"[help {key}] {line}" for line in diff_lines(hb, hn)]
    return (diffs + helps, []) if strict_help else (diffs, helps)


#: Differences a change made on purpose, against a baseline recorded before it: (pattern, why). They are
#: printed as expected and not counted; anything else fails the check. Add a line only with the change
#: that causes it, and say why.
EXPECTED: list[tuple[str, str]] = [
    (
        r"stdout: \+ compile: (off|on by default) \(",
        "train says whether it compiles the decoder layers and why (--compile left out: decided per run)",
    ),
    (
        r"(train_config\.yaml|rewardlab\.json): \$\.(train_config\.)?compile: added \(null\)$",
        "... --compile's default is 'decided per run' (null), saved with the config",
    ),
    (r"train_summary\.json: \$\.compile: added", "... and train_summary.json records the decision"),
    (
        r"bench/train\.json: \$\.(command\.compile: added \(null\)|engines\.\w+\.compile_decision: added)",
        "bench train's --compile left out decides as train does, and its report gives the decision",
    ),
    (r"\$\.datasets\.\w+\.content_sha256: added", "eval records each data set's content hash (--compare)"),
    (r"^\[serve\] exit code 0 != 130$", "a Ctrl-C (the check stops serve with SIGINT) exits 130"),
    (r"^\[serve\] stderr: \+ interrupted$", "... with the one line 'interrupted'"),
    (r"file added: .*\.rewardlab-run\.json$", "train records what OUT held before it (--overwrite)"),
    (r"\.length_corr_weight: added \(0\.1\)$", "the decorrelation weight became an option"),
    (r"train_config\.yaml: \+ length_corr_weight: 0\.1$", "... and is saved with the config"),
    (r"\.max_pairs: added \((None|null)\)$", "train and eval gained --max-pairs (a quick first run)"),
    (
        r"^\[(eval|demo)\] (stdout: \+ top finding: |.*report\.(md|html): [-+] "
        r"|.*metrics\.json: \$\.findings: added)",
        "eval reports open with findings derived from the numbers (ranked; rules in docs/evaluation.md)",
    ),
    (
        r"^\[(diagnose|demo)\] .*diagnostics\.(md|html|json)(: |$)",
        "diagnose states a probe's effect size and no longer advises against its own findings",
    ),
    (r"stdout: \+ note: best-of-N over-optimisation was not checked", "diagnose says what it skipped"),
    (
        r"^\[rlcheck\] (file added: rlcheck/(completions|exploit_pairs)\.jsonl$|stdout: [-+] Wrote |"
        r"rlcheck/rlcheck\.json: \$\.(gold|exports|prompts\.source|config\.(prompts_file|pair_min_gap|"
        r"pairs_per_prompt)): added|rlcheck/rlcheck\.md: [-+] )",
        "rlcheck exports the scored completions and exploit pairs, and names its prompts and gold",
    ),
    (
        r"^\[rlcheck\] rlcheck/rlcheck\.json: \$\.(prompts|eval)\.families\.\w+: missing \(base 0\)$",
        "rlcheck lists only the families its prompts have (a count of 0 is no longer written)",
    ),
    (
        r"^\[rlcheck\] (rlcheck/rlcheck\.json: \$\.verdict\.(proxy_gain_without_gold_gain|completions_needed"
        r"|text)|stdout: \+ .*(Proxy gain without gold gain|too small to tell))",
        "rlcheck's verdict names a proxy gain without gold gain and the completions a conclusion needs",
    ),
    (
        r"^\[rlcheck\] (rlcheck/rlcheck\.json: \$\.(monitor|arms\.\w+\.(eval|steps)\[\d+\]\."
        r"(signals|proxy_items|timing)): added|rlcheck/rlcheck\.(md|html): )",
        "rlcheck records the proxy's per-sample signals and validates the hacking monitor against the gold",
    ),
    (r"file added: .*/heldout\.jsonl$", "train writes the pairs --eval-split held out, for eval"),
    (r"\.split\.held_out_written: added", "... and records how many it wrote"),
    (r"\.input_format: added", "every checkpoint records its input format (one reward everywhere)"),
    (
        r"(file added: .*feature_stats\.safetensors$|rewardlab\.json: \$\.feature_stats: added)",
        "checkpoints store their training features' statistics (the feature_distance signal)",
    ),
    (r"stdout: \+ phase: ", "phases after training say when they start and how long they took"),
    (r"stdout: \+ averaging \d+ models into", "merge says what it is doing before the minutes it takes"),
    (
        r"^\[advise-(pairs|steps)\] (stdout: [-+] |advise-\w+/advice\.json: \$\.(hardware|method|command|"
        r"warnings))",
        "advise recommends for the machine too, with the measured alternatives",
    ),
    (
        r"(train_config\.yaml: \$\.|rewardlab\.json: \$\.train_config\.)ensemble: 1 != 5",
        "--method embedding trains five bootstrap heads by default (recorded in every run's config)",
    ),
    (
        r"(stdout: \+ CPU threads: |\$\.(engines\.\w+\.)?cpu_threads: added)",
        "CPU runs choose their thread count from the cores other processes leave free, and record it",
    ),
    (
        r"^\[rlcheck\] rlcheck/rlcheck\.json: \.\.\. \d+ more differences$",
        "rlcheck.json's new signals and monitor keys past the per-file limit (each was checked expected "
        "with the limit lifted)",
    ),
    (r"serve/info\.json: \$\.signals: added", "serve's /info lists the hacking signals the model gives"),
    (
        r"bench/score\.json: \$\.(max_abs_diff_batched_vs_padded|reward_scale|agreement_with_fp32): added",
        "bench score reports the precision's agreement with float32 and the layout difference",
    ),
    (
        r"(train_config\.yaml: \$\.|rewardlab\.json: \$\.train_config\.|"
        r"bench/train\.json: \$\.(command|engines\.\w+)\.)compile: added \(false\)",
        "training has a --compile option (off by default), recorded in every run's config and bench train",
    ),
    (
        r"(train_summary\.json: \$\.batching\.positions|bench/train\.json: \$\.(engines\.native\.positions|"
        r"engines\.native\.padding_share|native_over_trl\.positions)): [\d.e-]+ != [\d.e-]+$",
        "packed rows run padding-free: the positions counted are those the layers computed (real tokens)",
    ),
    (
        r"bench/train\.json: \$\.engines\.\w+\.(compiled_graphs|step_s): added",
        "bench train reports each engine's seconds per step and the graphs compiled",
    ),
    (
        r"^\[rlcheck\] (rlcheck/rlcheck\.json: \$\.monitor\.auroc\.gold step mean \(reference\): added|"
        r"stdout: \+ Hacking monitor \(signals a run without a gold has\))",
        "rlcheck's monitor table gains the gold's step-mean bound, and its verdict a line on the monitor",
    ),
    (
        r"stderr: [-+] error: options: --method embedding trains a head on frozen embeddings: no --lora",
        "the embedding method also refuses --compile, and says so",
    ),
    (r"rlcheck/rlcheck\.json: \$\.config\.independent: added \(null\)", "rlcheck has --independent (off)"),
    (
        r"\.lora_dropout: 0\.05 != 0\.0$",
        "LoRA's dropout defaults to 0 (its masks cost a quarter of a CPU LoRA step)",
    ),
    (
        r"^\[train-lora\] (ckpt/lora/((checkpoints/checkpoint-\d+/)?adapter_model\.safetensors: "
        r"(tensor |\.\.\. \d+ more)|INTEGRATION\.md: [-+] Kind: |"
        r"(train_summary|rewardlab|train_log)\.jsonl?: \$(\[\d+\])?\.((eval_)?metrics\.)?"
        r"(eval_\w+|train_loss|grad_norm|normalization\.(mean|std)|train_metrics\.train_loss|warnings\[\d+\])|"
        r"checkpoints/checkpoint-\d+/trainer_state\.json: \$\.log_history\[\d+\]\.grad_norm)|"
        r"stdout: [-+] (held-out: accuracy|warning: held-out accuracy))",
        "... so the LoRA run trains without dropout: its adapter weights, losses and held-out figures move",
    ),
    (
        r"^\[bench-train\] bench/train\.json: "
        r"\$\.(engines\.\w+\.adapter_params|command\.lora_dropout): added",
        "bench train records a LoRA run's adapter size (its MFU counts LoRA's FLOPs) and --lora-dropout",
    ),
    (
        r"rewardlab\.json: \$\.tokenization: \"prompt and response tokenized separately; decoders: "
        r"\[BOS\] prompt response EOS, reward at EOS; encoders: the tokenizer's != \"decoders: prompt \+ "
        r"response tokenized as one text, ",
        "a decoder's prompt and response are tokenized as one text, as TRL and serving stacks do "
        "(the demo data has no boundary the tokenizer merges, so no reward moves)",
    ),
]


def split_expected(diffs: list[str]) -> tuple[list[str], list[str]]:
    """(unexpected differences, expected ones with their reason) of ``diffs`` by :data:`EXPECTED`."""
    unexpected, expected = [], []
    for d in diffs:
        why = next((why for pattern, why in EXPECTED if re.search(pattern, d)), None)
        if why is None:
            unexpected.append(d)
        else:
            expected.append(f"{d}   [expected: {why}]")
    return unexpected, expected


def compare(base_dir: Path, new_dir: Path, strict_help: bool = False) -> int:
    """Print every difference of two recordings; 1 when one is not :data:`EXPECTED` (help: information)."""
    base = json.loads((base_dir / "record.json").read_text(encoding="utf-8"))
    new = json.loads((new_dir / "record.json").read_text(encoding="utf-8"))
    diffs, helps = compare_records(base, new, strict_help)
    if helps:
        print(f"information: {len(helps)} --help lines differ (not counted; --strict-help counts them)")
        print("\n".join(f"  {h}" for h in helps))
    diffs, expected = split_expected(diffs)
    if expected:
        print(f"expected: {len(expected)} differences made on purpose (not counted)")
        print("\n".join(f"  {e}" for e in expected))
    print("\n".join(diffs))
    print(f"{len(diffs)} unexpected differences between {base_dir} ({base.get('source')}) and {new_dir} "
          f"({new.get('source')}); recorded in {base.get('total_seconds', 0):.0f} s and "
          f"{new.get('total_seconds', 0):.0f} s")  # fmt: skip
    return 1 if diffs else 0
