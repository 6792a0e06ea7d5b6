"""`python -m zoo.train --spec FILE`: a network of the user's own, from a spec JSON file or a Python file.

- `FILE.json`: the spec JSON of docs/MODEL_FORMAT.md (`Sequential.to_json()` writes it).
- `FILE.py`: the user's own Python code, executed (that is the point: build the `Sequential` with loops, helper
  functions, whatever): it must define `model`, a `zoo.nn.Sequential`, and may define `recipe`, a dict of training
  fields (`RECIPE_FIELDS`) or a `zoo.models.ModelConfig` whose recipe fields are taken. Only run files you trust, as
  with any Python script.

`load(path) -> SpecFile` reads either; `SpecFile.config(name, dataset, **overrides)` makes the `ModelConfig` that
`zoo.train.train_and_evaluate` trains (command-line overrides win over the file's recipe, which wins over
ModelConfig's defaults). `check_data(cfg, ds, source)` says clearly when the spec and the data do not fit.
Every problem is a `SpecFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.models import ModelConfig
from zoo.nn import Sequential, SpecError

MAX_SPEC_JSON_BYTES = 1 << 20  # a spec of 256 layers is ~30 kB
# Recipe fields a spec file's `recipe` may set, with what each must be. `name`, `spec` and `dataset` come from
# the command line (--name, --spec, --data/--dataset), not from the recipe.
RECIPE_FIELDS = {
    "optimizer": ("one of adam, sgd", lambda v: v in ("adam", "sgd")),
    "loss": ("one of softmax_xent, mse", lambda v: v in ("softmax_xent", "mse")),
    "lr": ("a positive number", lambda v: _number(v) and v > 0),
    "epochs": ("an integer >= 1", lambda v: _integer(v) and v >= 1),
    "batch_size": ("an integer >= 1", lambda v: _integer(v) and v >= 1),
    "weight_decay": ("a number >= 0", lambda v: _number(v) and v >= 0),
    "label_smoothing": ("a number in [0, 1)", lambda v: _number(v) and 0 <= v < 1),
    "augment_shift": ("an integer >= 0", lambda v: _integer(v) and v >= 0),
    "augment_rotate": ("a number of degrees in [0, 180]", lambda v: _number(v) and 0 <= v <= 180),
    "augment_flip": ("true or false", lambda v: isinstance(v, bool)),
    "ema_decay": ("a number in [0, 1)", lambda v: _number(v) and 0 <= v < 1),
    "train_limit": ("an integer >= 1 or None", lambda v: v is None or (_integer(v) and v >= 1)),
}


def _integer(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _number(v) -> bool:
    return (_integer(v) or isinstance(v, (float, np.floating))) and math.isfinite(v)


class SpecFileError(Exception):
    """A spec file that cannot be used; the message names the file and what is wrong or missing."""


@dataclass(frozen=True)
class SpecFile:
    path: Path
    model: Sequential
    recipe: dict = field(default_factory=dict)

    def config(self, name: str | None, dataset: str, **overrides) -> ModelConfig:
        """The ModelConfig to train: `name` (default: the file's stem), the recipe, then the non-None overrides."""
        fields = {**self.recipe, **{k: v for k, v in overrides.items() if v is not None}}
        check_recipe(fields, f"{self.path}: recipe (with the command-line overrides)")
        return ModelConfig(name or self.path.stem, self.model, dataset, **fields)


def check_recipe(recipe: dict, where: str) -> None:
    for key, value in recipe.items():
        if key not in RECIPE_FIELDS:
            raise SpecFileError(f"{where}: unknown field {key!r}; a recipe may set {', '.join(RECIPE_FIELDS)}")
        what, ok = RECIPE_FIELDS[key]
        if not ok(value):
            raise SpecFileError(f"{where}: {key} = {value!r} must be {what}")


def load(path) -> SpecFile:
    """Read `path` (.json or .py); SpecFileError names the file and the fault."""
    path = Path(path)
    if not path.is_file():
        raise SpecFileError(f"--spec {path}: no such file; give a spec .json or a .py file defining `model`")
    if path.suffix == ".json":
        return SpecFile(path, _load_json(path))
    if path.suffix == ".py":
        return _load_python(path)
    raise SpecFileError(f"--spec {path}: the name must end in .json (a spec, docs/MODEL_FORMAT.md) or .py "
                        f"(Python defining `model`)")


def _load_json(path: Path) -> Sequential:
    if path.stat().st_size > MAX_SPEC_JSON_BYTES:
        raise SpecFileError(f"{path}: {path.stat().st_size:,} bytes, over the {MAX_SPEC_JSON_BYTES:,} a spec "
                            f"may have; is this a spec file?")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecFileError(f"{path}: not JSON ({e}); a spec looks like "
                            f'{{"format": "picozoo.sequential/2", "layers": [...]}} (docs/MODEL_FORMAT.md)') from None
    try:
        return Sequential.from_dict(d)
    except SpecError as e:
        raise SpecFileError(f"{path}: {e}") from None


def _load_python(path: Path) -> SpecFile:
    module_name = f"picozoo_spec_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up while it runs
    sys.path.insert(0, str(path.resolve().parent))  # as `python file.py` would: helpers beside it import
    try:
        loader_spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # the user's code: any failure is reported, with where it happened
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path]
        where = f" (line {frames[-1].lineno})" if frames else ""
        raise SpecFileError(f"{path}: raised {type(e).__name__} while running it{where}: {e}") from None
    finally:
        sys.modules.pop(module_name, None)
        sys.path.remove(str(path.resolve().parent))
    if not hasattr(module, "model"):
        raise SpecFileError(f"{path}: defines no `model`; set `model = zoo.nn.Sequential([...])` at top level")
    model = module.model
    if not isinstance(model, Sequential):
        raise SpecFileError(f"{path}: `model` is a {type(model).__name__}, not a zoo.nn.Sequential")
    recipe = getattr(module, "recipe", None)
    if recipe is None:
        recipe = {}
    elif isinstance(recipe, ModelConfig):
        defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name in RECIPE_FIELDS}
        recipe = {k: getattr(recipe, k) for k in RECIPE_FIELDS if getattr(recipe, k) != defaults[k]}
    elif isinstance(recipe, dict):
        recipe = dict(recipe)
    else:
        raise SpecFileError(f"{path}: `recipe` is a {type(recipe).__name__}; give a dict of "
                            f"{', '.join(RECIPE_FIELDS)} or a zoo.models.ModelConfig")
    check_recipe(recipe, f"{path}: recipe")
    return SpecFile(path, model, recipe)


def check_data(cfg: ModelConfig, ds, source: str) -> None:
    """The spec's input and output against the data: features per sample, and enough outputs for every label."""
    features = math.prod(cfg.spec.input_shape)
    if ds.features != features:
        raise SpecFileError(f"{source}: the spec's input is {list(cfg.spec.input_shape)} ({features} features) but "
                            f"the data {ds.name!r} has {ds.features} features per sample; change the spec's first "
                            f"layer (input shape or dense `in`) to match the data")
    n_classes = int(max(np.max(ds.y_train), np.max(ds.y_test))) + 1
    outputs = cfg.spec.out_features
    if cfg.spec.output == "binary":
        if n_classes > 2:
            raise SpecFileError(f"{source}: the spec has a binary output (one unit) but the data {ds.name!r} has "
                                f"labels up to {n_classes - 1}; use \"output\": \"logits\" with {n_classes} outputs")
    elif outputs < n_classes:
        raise SpecFileError(f"{source}: the spec's last layer has {outputs} outputs but the data {ds.name!r} has "
                            f"{n_classes} classes (labels 0..{n_classes - 1}); make the last dense layer's `out` "
                            f"{n_classes}")
