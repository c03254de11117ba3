"""Checks ARM request bodies against Microsoft's own models, generated from the published API
definitions: Microsoft.ContainerService (PyPI azure-mgmt-containerservice), .ContainerRegistry
(azure-mgmt-containerregistry), .Authorization (azure-mgmt-authorization, api-version
2022-04-01) and .ManagedIdentity (azure-mgmt-msi, 2024-11-30); the last two come from an older
generator whose models flatten `properties.*` in an attribute map.
Every key must be a field of the model at its place, of the field's type (enum values among
the known ones), not read-only, and every required field must be there. A misnamed or
misplaced field fails here rather than on Azure.

Reads one JSON object per line on stdin, {"model": "ManagedCluster", "body": {...}} (a model
of another package is "containerregistry:Registry" or
"authorization:RoleAssignmentCreateParameters"), and prints one line per object: "ok", or
the problems separated by "; ". Exit status 0.
"""

import enum
import json
import sys
import typing

import importlib

from azure.mgmt.containerservice import models
from azure.mgmt.containerservice._utils import model_base
from azure.mgmt.containerregistry import models as registry_models
from azure.mgmt.containerregistry._utils import model_base as registry_base
from azure.mgmt.authorization.v2022_04_01 import models as authorization_models
from azure.mgmt.msi.v2024_11_30 import models as msi_models

PACKAGES = {
    "containerservice": models,
    "containerregistry": registry_models,
    "authorization": authorization_models,
    "msi": msi_models,
}
API_VERSION = "2026-08-01"


def is_model(t):
    return isinstance(t, type) and issubclass(t, (model_base.Model, registry_base.Model))


def is_msrest_model(t):
    return isinstance(t, type) and hasattr(t, "_attribute_map") and not is_model(t)


def check_msrest(cls, value, path, errs):
    """An older generator's model: `_attribute_map` keys such as `properties.principalId`."""
    fields = {}
    for attr, spec in cls._attribute_map.items():
        fields[spec["key"]] = (attr, spec["type"])
    validation = getattr(cls, "_validation", {})

    def walk(v, prefix):
        for k, sub in v.items():
            key = f"{prefix}{k}"
            if key in fields:
                attr, t = fields[key]
                if validation.get(attr, {}).get("readonly"):
                    errs.append(f"{path}.{key}: read-only in {cls.__name__}")
                elif t == "str" and not isinstance(sub, str):
                    errs.append(f"{path}.{key}: {sub!r} is not a str")
            elif isinstance(sub, dict) and any(f.startswith(key + ".") for f in fields):
                walk(sub, key + ".")
            else:
                errs.append(f"{path}.{key}: not a field of {cls.__name__}")

    walk(value, "")
    sent = set()

    def keys(v, prefix):
        for k, sub in v.items():
            sent.add(prefix + k)
            if isinstance(sub, dict):
                keys(sub, prefix + k + ".")

    keys(value, "")
    for key, (attr, _) in fields.items():
        if validation.get(attr, {}).get("required") and key not in sent:
            errs.append(f"{path}.{key}: required by {cls.__name__}")


def hints(cls):
    cls()  # fills _attr_to_rest_field
    module = sys.modules[cls.__module__]
    scope = dict(vars(module))
    scope["_models"] = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    h = typing.get_type_hints(cls, globalns=scope)
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
        package, _, name = req["model"].rpartition(":")
        cls = getattr(PACKAGES[package or "containerservice"], name, None)
        if is_model(cls):
            check_model(cls, req["body"], name, errs)
        elif is_msrest_model(cls):
            check_msrest(cls, req["body"], name, errs)
        else:
            errs.append(f"no model {req['model']}")
        print("ok" if not errs else "; ".join(errs), flush=True)


if __name__ == "__main__":
    main()
