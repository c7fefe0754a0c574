"""Damaged and doctored model files: how many are refused, and none crashes.

Fits the small models of ``tests/file_mutations.py`` (dense AE with Adam and
with AdamW, VAE with RMSprop, conv AE with SGD and batch norm), saves each,
and tries many changed copies of every file:

- every byte of the header flipped once (xor 1), the damage the digest must catch;
- random byte flips anywhere in the file (random masks) and truncations;
- header fields replaced by wrong types, out-of-range or huge values, deep
  nesting, NaN/Infinity, or deleted, with the SHA-256 recomputed (as anyone who
  edits a file can);
- every tensor edited every way (wrong shape, dtype, NaN/Inf, dropped, extra),
  resealed likewise.

Each changed file is loaded and, if that succeeds, used (transform,
inverse_transform, one partial_fit, save and load again), in a worker
process: a crash is counted, and the worker restarted. The rule
(``tests/file_mutations.py``): damage is refused or harmless, edits are
refused or give a model that works; anything else counts as a failure.

Run ``python benchmarks/bench_file_fuzz.py --help`` for the options.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, environment, markdown_table, progress

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import file_mutations as fm  # noqa: E402

KINDS = {
    "header byte flips (every byte, xor 1)": "damage",
    "random byte flips": "damage",
    "truncations": "damage",
    "header field edits (resealed)": "edit",
    "tensor edits (resealed)": "edit",
}


# ------------------------------------------------------------------ cases


def cases(paths, n_random, seed):
    """Every case as a JSON-ready dict: model, kind, and what to change."""
    import numpy as np

    rng = np.random.RandomState(seed)
    listed = []
    for model, path in paths.items():
        data = open(path, "rb").read()
        metadata, tensors, document = fm.read(path)
        for offset in range(fm.header_length(data)):
            listed.append(
                {
                    "model": model,
                    "kind": "header byte flips (every byte, xor 1)",
                    "position": 8 + offset,
                    "mask": 1,
                }
            )
        for _ in range(n_random):
            listed.append(
                {
                    "model": model,
                    "kind": "random byte flips",
                    "position": int(rng.randint(len(data))),
                    "mask": int(rng.randint(1, 256)),
                }
            )
            listed.append(
                {"model": model, "kind": "truncations", "length": int(rng.randint(len(data)))}
            )
        json_paths = [p for p in fm.json_paths(document) if p]
        replacements = [*fm.REPLACEMENTS, "DELETE"]
        for _ in range(n_random):
            listed.append(
                {
                    "model": model,
                    "kind": "header field edits (resealed)",
                    "path": list(json_paths[rng.randint(len(json_paths))]),
                    "replacement": replacements[rng.randint(len(replacements))],
                }
            )
        for name in sorted(tensors):
            for how in fm.TENSOR_EDITS:
                listed.append(
                    {"model": model, "kind": "tensor edits (resealed)", "tensor": name, "how": how}
                )
    return listed


def make_file(case, original, target):
    """Write the changed copy that ``case`` describes to ``target``."""
    data, (metadata, tensors, document) = original
    kind = case["kind"]
    if "position" in case:
        Path(target).write_bytes(fm.flipped(data, case["position"], case["mask"]))
    elif "length" in case:
        Path(target).write_bytes(fm.truncated(data, case["length"]))
    elif "path" in case:
        replacement = KeyError if case["replacement"] == "DELETE" else case["replacement"]
        text = fm.edit_json(document, tuple(case["path"]), replacement)
        fm.write(target, {**metadata, "estimator": text}, tensors)
    else:
        assert kind == "tensor edits (resealed)"
        fm.write(target, metadata, fm.edit_tensors(tensors, case["tensor"], case["how"]))


# ----------------------------------------------------------------- worker


def worker(directory, cases_file, start):
    """Run the cases of ``cases_file`` (JSON lines) from ``start`` on; print each
    outcome as a JSON line."""
    import warnings

    warnings.simplefilter("ignore")
    # Results go to the real stdout; anything a model prints (an edited file
    # may ask for verbose=1) goes nowhere.
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    X = fm.data()
    originals, behaviours = {}, {}
    target = os.path.join(directory, f"case-{os.getpid()}.skae")
    with open(cases_file) as lines:
        listed = [json.loads(line) for line in lines][start:]
    for case in listed:
        model = case["model"]
        if model not in originals:
            path = os.path.join(directory, f"{model}.skae")
            originals[model] = (open(path, "rb").read(), fm.read(path))
            behaviours[model] = fm.behaviour_of(path, X)
        make_file(case, originals[model], target)
        damage = KINDS[case["kind"]] == "damage"
        result = fm.outcome(target, X, behaviours[model] if damage else None)
        results.write(json.dumps({"kind": result.kind, "detail": result.detail}) + "\n")


def run_cases(listed, directory):
    """Each case's outcome; a worker that dies counts its case as a crash."""
    cases_file = os.path.join(directory, "cases.jsonl")
    with open(cases_file, "w") as out:
        out.write("".join(json.dumps(case) + "\n" for case in listed))
    results = []
    while len(results) < len(listed):
        process = subprocess.Popen(
            [sys.executable, __file__, "--worker", directory, cases_file, str(len(results))],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for line in process.stdout:
            results.append(json.loads(line))
            if len(results) % 2000 == 0:
                progress(f"  {len(results)} of {len(listed)} cases")
        code = process.wait()
        if len(results) < len(listed):  # the worker died on this case
            case = listed[len(results)]
            results.append({"kind": "crash", "detail": f"exit code {code}"})
            progress(f"  crash (exit code {code}) on {case}")
    return results


# ------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--random",
        type=int,
        default=500,
        metavar="N",
        help="random byte flips, truncations and header edits per model (default: 500 each)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", metavar="FILE", help="also write the markdown table here")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON here")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        directory, cases_file, start = args.worker
        return worker(directory, cases_file, int(start))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        paths = fm.write_models(directory)
        listed = cases(paths, args.random, args.seed)
        progress(f"{len(listed)} changed files of {len(paths)} models")
        results = run_cases(listed, directory)
    seconds = time.perf_counter() - began
    counts = collections.defaultdict(collections.Counter)
    for case, result in zip(listed, results, strict=False):
        counts[case["kind"]][result["kind"]] += 1
    failures = [
        {**result, "case": case}
        for case, result in zip(listed, results, strict=False)
        if result["kind"] in ("changed", "raw error", "crash")
    ]
    columns = ["rejected", "identical", "works", "changed", "raw error", "crash"]
    rows = [
        [kind, sum(counts[kind].values()), *[counts[kind][c] for c in columns]] for kind in KINDS
    ]
    rows.append(["all", len(results), *[sum(counts[k][c] for k in KINDS) for c in columns]])
    env = environment(None)
    text = "\n".join(
        [
            "## Damaged and doctored model files",
            "",
            f"{len(paths)} models ({', '.join(paths)}), {len(results)} changed files, "
            f"{seconds:.0f} s. Rule: damage is rejected (ValueError/OSError) or identical "
            "in behaviour; edits (SHA-256 recomputed) are rejected or give a model that "
            "transforms, trains and saves. changed, raw error and crash are failures.",
            "",
            markdown_table(["change", "files", *columns], rows),
        ]
    )
    payload = {
        "environment": env,
        "settings": vars(args),
        "seconds": seconds,
        "counts": {k: dict(v) for k, v in counts.items()},
        "failures": failures,
    }
    emit(text, payload, args.output, args.json)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
