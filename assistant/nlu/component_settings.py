"""Settings of our trainable NLU components, read the same way by each: config.yml's
entry over the component's defaults, an unknown setting refused by name (a typo
must not train a model with the default quietly), and paths relative to the
project. Tools and tests read a component's settings through ``configured``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Type, TypeVar

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage

from assistant.paths import PROJECT_ROOT

CONFIG_FILE = PROJECT_ROOT / "config.yml"
Component = TypeVar("Component", bound="WithoutSettings")


def project_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def project_paths(values: Optional[List[Any]]) -> List[Path]:
    """A setting's list of folders (the blind sets a model reads), as paths."""
    return [project_path(str(value)) for value in values or []]


class WithoutSettings(GraphComponent):
    """A component with no settings and nothing to train: built with no arguments."""

    @classmethod
    def create(cls: Type[Component], config: Dict[str, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> Component:
        return cls()


class ComponentSettings:
    """A mixin: the component defines ``get_default_config`` and may extend
    ``checked_config`` with its own checks."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def checked_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        """The defaults with config.yml's settings over them; unknown settings, and a
        setting of the wrong kind (text for a number...), stop training and start-up
        with a message naming every one."""
        defaults = cls.get_default_config()
        unknown = sorted(set(config) - set(defaults))
        if unknown:
            raise ValueError(f"config.yml: {cls.__name__} has no setting "
                             f"{', '.join(repr(k) for k in unknown)} (expected {', '.join(defaults)})")
        wrong = [f"'{key}' must be {_kind(defaults[key])}, not {value!r}" for key, value in config.items()
                 if _kind(value) != _kind(defaults[key])]
        if wrong:
            raise ValueError(f"config.yml: {cls.__name__}: {'; '.join(wrong)}")
        return {**defaults, **config}

    @classmethod
    def configured(cls, config_file: Path = CONFIG_FILE) -> Dict[str, Any]:
        """The settings config.yml gives this component, checked."""
        pipeline = yaml.safe_load(config_file.read_text(encoding="utf-8"))["pipeline"]
        entry = next(c for c in pipeline if c["name"].endswith(cls.__name__))
        return cls.checked_config({k: v for k, v in entry.items() if k != "name"})


def _kind(value: Any) -> str:
    """A setting's kind as config.yml writes it: an integer will do for a number."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else type(value).__name__
