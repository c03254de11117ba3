"""Checks ARM request bodies against Microsoft's own models of Microsoft.ContainerService
(PyPI azure-mgmt-containerservice, generated from the published API definition): every key
must be a field of the model at its place, of the field's type (enum values among the known
ones), not read-only, and every required field must be there. A misnamed or misplaced field
fails here rather than on Azure.

Reads one JSON object per line on stdin, {"model": "ManagedCluster", "body": {...}}, and
prints one line per object: "ok", or the problems separated by "; ". Exit status 0.
"""

import enum
import json
import sys
import typing

from azure.mgmt.containerservice import models
from azure.mgmt.containerservice.models import _models
from azure.mgmt.containerservice._utils import model_base

GLOBALS = dict(vars(_models))
GLOBALS["_models"] = models
API_VERSION = "2026-08-01"


def is_model(t):
    return isinstance(t, type) and issubclass(t, model_base.Model)


def hints(cls):
    cls()  # fills _attr_to_rest_field
    h = typing.get_type_hints(cls, globalns=GLOBALS)
    return {f._rest_name: (f, h.get(attr)) for attr, f in cls._attr_to_rest_field.items()}


def check_value(t, value, path, errs):
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Union:
        options = [a for a in args if a is not type(None)]
        if value is None:
            return
        enums = [a for a in options if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            known = {e.value for e in enums[0]}
            if value not in known:
                errs.append(f"{path}: {value!r} is not one of {sorted(known)}")
            return
        for a in options:
            sub = []
            check_value(a, value, path, sub)
            if not sub:
                return
        check_value(options[0], value, path, errs)
        return
    if origin is list:
        if not isinstance(value, list):
            errs.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            check_value(args[0], v, f"{path}[{i}]", errs)
        return
    if origin is dict:
        if not isinstance(value, dict):
            errs.append(f"{path}: expected an object")
            return
        for k, v in value.items():
            check_value(args[1], v, f"{path}.{k}", errs)
        return
    if is_model(t):
        check_model(t, value, path, errs)
        return
    if t is str:
        ok = isinstance(value, str)
    elif t is bool:
        ok = isinstance(value, bool)
    elif t is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(t, type) and issubclass(t, enum.Enum):
        known = {e.value for e in t}
        ok = value in known
    else:
        ok = True  # datetimes and other formats: not sent by the provider
    if not ok:
        errs.append(f"{path}: {value!r} is not a {getattr(t, '__name__', t)}")


def check_model(cls, value, path, errs):
    if not isinstance(value, dict):
        errs.append(f"{path}: expected an object ({cls.__name__})")
        return
    fields = hints(cls)
    for key, v in value.items():
        if key not in fields:
            errs.append(f"{path}.{key}: not a field of {cls.__name__}")
            continue
        f, t = fields[key]
        if f._visibility == ["read"]:
            errs.append(f"{path}.{key}: read-only in {cls.__name__}")
            continue
        check_value(t, v, f"{path}.{key}", errs)
    for key, (f, t) in fields.items():
        required = t is not None and typing.get_origin(t) is not typing.Union
        if required and key not in value and f._visibility and "create" in f._visibility:
            errs.append(f"{path}.{key}: required by {cls.__name__}")


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        errs = []
        cls = getattr(models, req["model"], None)
        if not is_model(cls):
            errs.append(f"no model {req['model']}")
        else:
            check_model(cls, req["body"], req["model"], errs)
        print("ok" if not errs else "; ".join(errs), flush=True)


if __name__ == "__main__":
    main()
