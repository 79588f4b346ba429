"""Train a model with `rasa train` and record how long it took.

    python -m assistant.train                      # the project's model (make model)
    python -m assistant.train --config bench/baseline_config.yml --name baseline --out build/bench

The time is written next to the model (``<name>.training.json``) so `make bench`
can report training time without training the project's model again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from assistant.knowledge import PROJECT_ROOT

RASA = Path(sys.executable).parent / "rasa"


def record_path(model: Path) -> Path:
    return model.with_name(model.name.replace(".tar.gz", "") + ".training.json")


def train(config: Path, out: Path, name: str) -> float:
    """Train; return the seconds it took (the record is written too)."""
    started = time.monotonic()
    subprocess.run([str(RASA), "train", "--config", str(config), "--out", str(out),
                    "--fixed-model-name", name, "--quiet"], cwd=PROJECT_ROOT, check=True)
    seconds = time.monotonic() - started
    model = out / f"{name}.tar.gz"
    record_path(model).write_text(json.dumps({"config": str(config), "seconds": round(seconds, 1)}) + "\n")
    return seconds


def training_seconds(model: Path) -> Optional[float]:
    """The recorded training time of a model, if it was trained by this module."""
    try:
        return float(json.loads(record_path(model).read_text())["seconds"])
    except (OSError, ValueError, KeyError):
        return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.yml"))
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--name", default="dry-needling")
    args = parser.parse_args(argv)
    seconds = train(args.config, args.out, args.name)
    print(f"trained {args.out / args.name}.tar.gz in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
