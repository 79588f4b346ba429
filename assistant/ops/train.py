"""Train a model with `rasa train` and record how long it took.

    python -m assistant.ops.train                      # the project's model (make model)
    python -m assistant.ops.train --config bench/baseline_config.yml --name baseline --out build/bench

The time is written next to the model (``<name>.training.json``) so `make bench`
can report training time without training the project's model again. Rasa
reuses cached components from earlier trainings (.rasa/cache), which makes a
retraining look fast: the record says whether that cache was warm, and only a
training from a cold (or disabled) cache counts as the training time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from assistant.paths import PROJECT_ROOT

RASA = Path(sys.executable).parent / "rasa"
CACHE = PROJECT_ROOT / ".rasa" / "cache"  # Rasa's default training cache


def record_path(model: Path) -> Path:
    return model.with_name(model.name.replace(".tar.gz", "") + ".training.json")


def train(config: Path, out: Path, name: str, use_cache: bool = True) -> float:
    """Train; return the seconds it took (the record is written too)."""
    env = dict(os.environ)
    if use_cache:
        cache = "warm" if CACHE.is_dir() and any(CACHE.iterdir()) else "cold"
    else:
        cache, env["RASA_MAX_CACHE_SIZE"] = "disabled", "0"
    started = time.monotonic()
    subprocess.run([str(RASA), "train", "--config", str(config), "--out", str(out),
                    "--fixed-model-name", name, "--quiet"], cwd=PROJECT_ROOT, env=env, check=True)
    seconds = time.monotonic() - started
    record = {"config": str(config), "seconds": round(seconds, 1), "cache": cache}
    record_path(out / f"{name}.tar.gz").write_text(json.dumps(record) + "\n")
    return seconds


def training_seconds(model: Path) -> Optional[float]:
    """How long a full training of this model took, if that was recorded
    (None for a training that reused a warm cache)."""
    try:
        record = json.loads(record_path(model).read_text())
        return None if record.get("cache") == "warm" else float(record["seconds"])
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
