"""Run the fault suite several times with randomised kill moments; report pass counts per fault.

Before a release (issue 16)::

    python tests/fault_soak.py --rounds 20
    python tests/fault_soak.py --rounds 3 -k "sigkill or sigterm"

Each round runs ``tests/test_faults.py``, ``tests/test_stops.py`` and
``tests/test_resume_faults.py`` in one pytest process with a new ``FAULT_SEED``, which
moves every kill to another moment (``fault_helpers.fault_rng``). The table at the end
gives, per fault, how many rounds passed and what a pass proves; the seeds of failed
rounds replay them (``FAULT_SEED=S pytest tests/test_faults.py -k NAME``). Not part of
the default test run (it is not named ``test_*``).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SUITE = ["test_faults.py", "test_stops.py", "test_resume_faults.py"]

WHAT = {
    "test_sigkill_of_one_rank": "resumed, weights identical",
    "test_sigterm_to_torchrun": "checkpointed, resumed, weights identical",
    "test_sigusr1_to_every_rank": "restarted by torchrun, weights identical",
    "test_sigterm_to_the_launcher_then_resume_with_one_rank": "exit 75, elastic 2->1, whole epoch trained",
    "test_ctrl_c_to_one_process_then_resume_with_two_ranks": "exit 75, elastic 1->2, whole epoch trained",
    "test_every_stop_signal": "checkpoint, one line per rank, exit 75, no traceback",
    "test_a_graph_without_validation": "no made-up figures, early stopping off",
    "test_truncated_newest": "older checkpoint resumed, weights identical",
}


def round_results(xml_path: Path) -> dict[str, bool]:
    """``test id -> passed`` from one round's JUnit XML (skipped tests are left out)."""
    results = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            continue
        failed = case.find("failure") is not None or case.find("error") is not None
        results[case.get("name", "?")] = not failed
    return results


def run_round(seed: int, keyword: str | None, workdir: Path) -> dict[str, bool]:
    xml_path = workdir / f"round-{seed}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml_path}",
           *[str(TESTS / f) for f in SUITE]]
    if keyword:
        cmd += ["-k", keyword]
    env = dict(os.environ, FAULT_SEED=str(seed))
    subprocess.run(cmd, cwd=TESTS.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return round_results(xml_path) if xml_path.exists() else {}


def describe(test_id: str) -> str:
    return next((w for prefix, w in WHAT.items() if test_id.startswith(prefix)), "as the test asserts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="how many times to run the suite (default 5)")
    ap.add_argument("-k", dest="keyword", help="pytest -k expression: only these faults")
    ap.add_argument("--seed", type=int, help="seed of the per-round seeds (default: random)")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    passed: dict[str, int] = defaultdict(int)
    ran: dict[str, int] = defaultdict(int)
    failed_seeds: dict[str, list[int]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as tmp:
        for i in range(args.rounds):
            seed = rng.randrange(1 << 30)
            results = run_round(seed, args.keyword, Path(tmp))
            for test_id, ok in results.items():
                ran[test_id] += 1
                passed[test_id] += ok
                if not ok:
                    failed_seeds[test_id].append(seed)
            print(f"round {i + 1}/{args.rounds} (FAULT_SEED={seed}): "
                  f"{sum(results.values())}/{len(results)} passed", flush=True)
    for test_id in sorted(ran):
        seeds = f"; failed with FAULT_SEED {failed_seeds[test_id]}" if failed_seeds[test_id] else ""
        print(f"{test_id}: {passed[test_id]}/{ran[test_id]} {describe(test_id)}{seeds}")
    return 0 if ran and all(passed[t] == ran[t] for t in ran) else 1


if __name__ == "__main__":
    sys.exit(main())
