"""Which systems the bench compares, which interpreter runs each, and how their venvs are made.

The peers never go into the system Python (their pins would downgrade the ``redis`` everyone uses):
they live in venvs under ``bench/.peers/`` made by ``python -m bench --setup`` from the pinned
requirement files in ``bench/peers/``. arq gets a venv of its own because it pins ``redis<6`` while
taskiq-redis needs ``redis>=8`` and BullMQ ``redis>=6.2``. tqrun runs from the interpreter that runs
the bench (the editable install).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PEERS_DIR = BENCH_DIR / "peers"
VENVS = BENCH_DIR / ".peers"
# venv name -> requirements file, installed by --setup.
VENV_REQUIREMENTS = {"main": PEERS_DIR / "requirements-main.txt", "arq": PEERS_DIR / "requirements-arq.txt"}


@dataclass(frozen=True)
class System:
    """One system under test: the adapter module in bench/peers and the interpreter that imports it."""

    key: str
    adapter: str
    venv: str | None  # None: the bench's own interpreter (tqrun)
    # tqrun is measured on more jobs so that each timed run lasts long enough to be measurable.
    scale: int = 1

    @property
    def python(self) -> str:
        if self.venv is None:
            return sys.executable
        return str(VENVS / self.venv / "bin" / "python")

    def available(self) -> bool:
        return self.venv is None or Path(self.python).exists()


TQRUN = System("tqrun", "p_tqrun", None, scale=24)
PEERS = (
    System("taskiq", "p_taskiq", "main"),
    System("huey", "p_huey", "main"),
    System("saq", "p_saq", "main"),
    System("dramatiq", "p_dramatiq", "main"),
    System("celery", "p_celery", "main"),
    System("arq", "p_arq", "arq"),
    System("rq", "p_rq", "main"),
    System("bullmq", "p_bullmq", "main"),
)
ALL = (TQRUN, *PEERS)


def by_key(keys: list[str]) -> list[System]:
    known = {s.key: s for s in ALL}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; known: {sorted(known)}")
    return [known[k] for k in keys]


def setup_venvs() -> None:
    """Create the peers' venvs and install the pinned requirements (idempotent)."""
    for name, requirements in VENV_REQUIREMENTS.items():
        target = VENVS / name
        if not (target / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
        subprocess.run([str(target / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
