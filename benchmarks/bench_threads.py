"""Fit time alone and beside busy processes: skae's thread setting against torch's default.

A default fit on a machine that other work shares is the everyday case (a
laptop, a notebook server, a CI runner). Each round times, in fresh
processes (imports not timed), the same fits twice: alone, then while
``--busy`` other processes spin on the CPU. Each fit runs under two
settings:

- ``torch default``: ``skae.set_config(n_threads=torch.get_num_threads())``,
  skae's behaviour before it limited its threads (torch's pool takes every
  core);
- ``auto``: skae's default, one core fewer than the process may use.

Fits: ``digits``, the default ``AutoencoderTransformer(n_components=2)`` on
scikit-learn's digits (1,797 x 64, up to 100 epochs); ``mnist``, the same on
the MNIST split's 8,000 training rows with ``max_epochs=5`` (early stopping
on, as by default from 5,000 rows), so that a round stays short. Reported:
median seconds over the rounds, the threads used, and the ratio of the busy
median to the alone median of the same setting.

Run ``python benchmarks/bench_threads.py --help`` for the options.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import (
    add_common_arguments,
    check_common_arguments,
    comma_list,
    emit,
    environment,
    environment_line,
    markdown_table,
    progress,
)

FITS = ("digits", "mnist")
SETTINGS = ("torch default", "auto")

_CHILD = r"""
import json, sys, time, warnings
import torch
import skae
from skae._threads import call_threads
fit, setting, data_home = sys.argv[1], sys.argv[2], sys.argv[3] or None
sys.path.insert(0, sys.argv[4])
if fit == "digits":
    from sklearn.datasets import load_digits
    X, options = load_digits().data, {}
else:
    from _common import mnist_split
    X, options = mnist_split(data_home)[0], {"max_epochs": 5}
n_threads = torch.get_num_threads() if setting == "torch default" else "auto"
warnings.simplefilter("ignore")
with skae.config_context(n_threads=n_threads):
    threads = call_threads()
    started = time.perf_counter()
    skae.AutoencoderTransformer(n_components=2, random_state=0, **options).fit(X)
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "threads": threads}))
"""


def timed_fit(fit, setting, data_home):
    """Seconds and threads of one fit in a fresh process."""
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, fit, setting, data_home or "", here],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def busy_processes(n):
    """``n`` processes that spin on the CPU until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run(fits, rounds, busy, data_home):
    """``{(condition, fit, setting): [result, ...]}`` over interleaved rounds."""
    results = {}
    for round_index in range(rounds):
        for condition in ("alone", "busy"):
            others = busy_processes(busy) if condition == "busy" else []
            try:
                for fit in fits:
                    for setting in SETTINGS:
                        result = timed_fit(fit, setting, data_home)
                        results.setdefault((condition, fit, setting), []).append(result)
                        progress(
                            f"round {round_index + 1}/{rounds} {condition} {fit} {setting}: "
                            f"{result['seconds']:.2f} s on {result['threads']} thread(s)"
                        )
            finally:
                for process in others:
                    process.kill()
                    process.wait()
    return results


def table(results, fits):
    rows = []
    for fit in fits:
        for setting in SETTINGS:
            alone = statistics.median(r["seconds"] for r in results[("alone", fit, setting)])
            busy = statistics.median(r["seconds"] for r in results[("busy", fit, setting)])
            threads = results[("alone", fit, setting)][0]["threads"]
            rows.append([fit, setting, threads, alone, busy, busy / alone])
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--fits", default=",".join(FITS), help="subset of: digits,mnist")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument(
        "--busy", type=int, default=1, help="busy processes beside the fits (default: 1)"
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        args.fits = comma_list(args.fits, FITS)
    except ValueError as error:
        parser.error(f"--fits: {error}")
    if args.rounds < 1 or args.busy < 1:
        parser.error("--rounds and --busy must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    results = run(args.fits, args.rounds, args.busy, args.data_home)
    rows = table(results, args.fits)
    env = environment()
    headers = ["fit", "setting", "threads", "alone s", "busy s", "busy / alone"]
    markdown = (
        f"## Fit time alone and beside {args.busy} busy process(es)\n\n"
        f"{environment_line(env)} Medians of {args.rounds} interleaved rounds.\n\n"
        + markdown_table(headers, rows)
    )
    payload = {
        "environment": env,
        "rounds": args.rounds,
        "busy": args.busy,
        "rows": [dict(zip(headers, row, strict=True)) for row in rows],
        "raw": {" / ".join(key): value for key, value in results.items()},
    }
    emit(markdown, payload, args.output, args.json)


if __name__ == "__main__":
    main()
