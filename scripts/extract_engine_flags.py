"""Extract the command-line flags a serving engine's release defines, from its released package.

Run once per engine version; the output is committed under planner/launch/data/ and read by
planner/launch/flags.py and tests/test_launch_flags.py (every generated flag must be one the
named version defines). The packages are read, never imported (they need CUDA, torch and more):
the script parses their argument definitions with ``ast``.

    pip download --no-deps vllm==0.34.0 -d /tmp/wheels
    python scripts/extract_engine_flags.py vllm /tmp/wheels/vllm-0.34.0-*.whl
    pip download --no-deps sglang==0.5.23 -d /tmp/wheels
    python scripts/extract_engine_flags.py sglang /tmp/wheels/sglang-0.5.23-*.whl

What is read:

- vLLM (``vllm serve``): every literal flag of an ``add_argument`` call in
  ``vllm/engine/arg_utils.py`` (EngineArgs.add_cli_args) and
  ``vllm/entrypoints/common/cli_args.py`` (make_arg_parser), and one ``--field-name`` per field
  of the frontend dataclasses (``FrontendArgs`` and its bases), which that file registers in a
  loop. A boolean config field is registered with argparse's BooleanOptionalAction, so its
  ``--no-`` form exists too: a field is boolean when its annotation names ``bool`` and not
  ``str`` (vLLM's "bool | str | None" fields take a value).
- SGLang (``python -m sglang.launch_server``): one flag per annotated field of the classes in
  ``sglang/srt/arg_groups/fields/*.py`` (``A[T, "help"]`` or ``A[T, Arg(...)]``; ``cli_name``
  and ``aliases`` read, ``no_cli=True`` skipped), as ``add_cli_args_from_dataclass`` registers
  them, and the literal flags of ``add_argument`` calls in ``sglang/srt/server_args.py``. A
  release without the fields folder (before SGLang moved to dataclass fields) is read from the
  ``add_argument`` calls of server_args.py alone.

TensorRT-LLM is not on PyPI as a package (its PyPI entry is a stub that downloads the wheel from
NVIDIA's own index, which this machine cannot reach); its flags are written by hand in
planner/launch/data/trtllm-*.json with the source files named.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "planner" / "launch" / "data"


def _strings(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            and a.value.startswith("-")]


def _add_argument_flags(tree: ast.AST) -> tuple[set[str], list[tuple[str, str]]]:
    """Literal flags of every ``*.add_argument(...)`` call, and (flag, field) pairs where the
    call spreads ``**kwargs_var["field"]`` (vLLM's config-derived arguments)."""
    flags: set[str] = set()
    spread: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            lits = _strings(node)
            flags.update(lits)
            for kw in node.keywords:
                if kw.arg is None and isinstance(kw.value, ast.Subscript) and isinstance(kw.value.slice, ast.Constant):
                    spread += [(f, str(kw.value.slice.value)) for f in lits if f.startswith("--")]
    return flags, spread


def _class_fields(trees: dict[str, ast.AST]) -> dict[str, dict[str, str]]:
    """class name -> field name -> annotation source, over every parsed file."""
    out: dict[str, dict[str, str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = out.setdefault(node.name, {})
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        fields[item.target.id] = ast.unparse(item.annotation)
    return out


def _bases(trees: dict[str, ast.AST], name: str) -> list[str]:
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == name:
                return [ast.unparse(b) for b in node.bases]
    return []


def _literal_values(trees: dict[str, ast.AST], file: str, name: str) -> list[str]:
    """The strings of ``name = Literal[...]`` or ``name = [...]`` at the top of ``file``."""
    tree = trees.get(file)
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
                return [c.value for c in ast.walk(node.value)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return []


def _is_flag_bool(annotation: str) -> bool:
    return bool(re.search(r"\bbool\b", annotation)) and not re.search(r"\bstr\b", annotation)


def _read(whl: Path, prefix: str) -> dict[str, ast.AST]:
    trees = {}
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name.startswith(prefix) and name.endswith(".py"):
                trees[name] = ast.parse(z.read(name).decode("utf-8"))
    return trees


def vllm(whl: Path) -> tuple[list[str], dict[str, object], dict[str, list[str]], list[str]]:
    trees = _read(whl, "vllm/")
    files = ["vllm/engine/arg_utils.py", "vllm/entrypoints/common/cli_args.py"]
    files = [f for f in files if f in trees] or [f for f in trees if f.endswith("entrypoints/openai/cli_args.py")]
    classes = _class_fields(trees)
    flags: set[str] = set()
    kwargs_class: dict[str, str] = {}
    for f in ("vllm/engine/arg_utils.py",):
        for node in ast.walk(trees[f]):     # model_kwargs = get_kwargs(ModelConfig)
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id == "get_kwargs"
                    and node.value.args and isinstance(node.value.args[0], ast.Name)):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        kwargs_class[t.id] = node.value.args[0].id
    bools: set[str] = set()
    for f in files + ["vllm/engine/arg_utils.py"]:
        lits, _ = _add_argument_flags(trees[f])
        flags |= lits
        for node in ast.walk(trees[f]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                for kw in node.keywords:
                    v = kw.value
                    # **kwargs["field"], or **{**kwargs["field"], "default": None}
                    subs = [s for s in ast.walk(v) if isinstance(s, ast.Subscript) and isinstance(s.value, ast.Name)
                            and isinstance(s.slice, ast.Constant)] if kw.arg is None else []
                    for sub in subs:
                        cls = kwargs_class.get(sub.value.id)       # type: ignore[attr-defined]
                        ann = classes.get(cls or "", {}).get(str(sub.slice.value), "")   # type: ignore[attr-defined]
                        if _is_flag_bool(ann):
                            bools.update(x for x in _strings(node) if x.startswith("--"))
                    if kw.arg == "action" and "BooleanOptionalAction" in ast.unparse(v):
                        bools.update(x for x in _strings(node) if x.startswith("--"))
    front = ["FrontendArgs"]
    while front[-1] in classes and _bases(trees, front[-1]):
        base = _bases(trees, front[-1])[0]
        if base not in classes:
            break
        front.append(base)
    for cls in front:
        for name, ann in classes[cls].items():
            flag = "--" + name.replace("_", "-")
            flags.add(flag)
            if _is_flag_bool(ann):
                bools.add(flag)
    flags |= {"--no-" + b[2:] for b in bools}
    port = _default(trees, "FrontendArgs", "port")
    choices = {"--kv-cache-dtype": _literal_values(trees, "vllm/config/cache.py", "CacheDType"),
               "--quantization": _literal_values(trees, "vllm/model_executor/layers/quantization/__init__.py",
                                                 "QuantizationMethods")}
    read = files + [f"fields of {', '.join(front)}", "vllm/config/cache.py CacheDType",
                    "quantization/__init__.py QuantizationMethods"]
    return sorted(flags), {"--port": port}, choices, read


def _default(trees: dict[str, ast.AST], cls: str, field: str) -> object:
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls:
                for item in node.body:
                    if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                            and item.target.id == field and isinstance(item.value, ast.Constant)):
                        return item.value.value
    return None


def _arg_meta(ann: ast.expr) -> tuple[str, ast.expr | None] | None:
    """(type source, the Arg call or None for a bare help string) of ``A[T, ...]``."""
    if not (isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) and ann.value.id in ("A", "Annotated")):
        return None
    parts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
    typ = ast.unparse(parts[0])
    for meta in parts[1:]:
        if isinstance(meta, ast.Constant) and isinstance(meta.value, str):
            return typ, None
        if isinstance(meta, ast.Call) and isinstance(meta.func, ast.Name) and meta.func.id == "Arg":
            return typ, meta
    return None


def sglang(whl: Path) -> tuple[list[str], dict[str, object], dict[str, list[str]], list[str]]:
    trees = _read(whl, "sglang/srt/")
    flags: set[str] = set()
    defaults: dict[str, object] = {}
    choices: dict[str, list[str]] = {"--quantization": _literal_values(trees, "sglang/srt/arg_groups/choices.py",
                                                                       "QUANTIZATION_CHOICES")}
    field_files = sorted(f for f in trees if "/arg_groups/fields/" in f)
    for f in field_files:
        for node in ast.walk(trees[f]):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                    continue
                meta = _arg_meta(item.annotation)
                if meta is None:
                    continue
                _, arg = meta
                name = "--" + item.target.id.replace("_", "-")
                names = [name]
                if arg is not None:
                    kw = {k.arg: k.value for k in arg.keywords if k.arg}
                    if isinstance(kw.get("no_cli"), ast.Constant) and kw["no_cli"].value is True:
                        continue
                    if isinstance(kw.get("cli_name"), ast.Constant):
                        names = [str(kw["cli_name"].value)]
                    if isinstance(kw.get("aliases"), ast.List):
                        names += [e.value for e in kw["aliases"].elts if isinstance(e, ast.Constant)]
                    if "BooleanOptionalAction" in ast.unparse(kw.get("action", ast.Constant(None))):
                        names += ["--no-" + n[2:] for n in names if n.startswith("--")]
                    if item.target.id == "kv_cache_dtype" and isinstance(kw.get("choices"), ast.List):
                        choices["--kv-cache-dtype"] = [e.value for e in kw["choices"].elts
                                                       if isinstance(e, ast.Constant)]
                flags.update(names)
                if item.target.id in ("port", "host") and isinstance(item.value, ast.Constant):
                    defaults[names[0]] = item.value.value
    lits, _ = _add_argument_flags(trees["sglang/srt/server_args.py"])
    flags |= lits
    if not field_files:
        for node in ast.walk(trees["sglang/srt/server_args.py"]):
            if isinstance(node, ast.ClassDef) and node.name == "ServerArgs":
                for item in node.body:
                    if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                            and item.target.id == "port" and isinstance(item.value, ast.Constant)):
                        defaults["--port"] = item.value.value
    read = ["sglang/srt/server_args.py", "sglang/srt/arg_groups/choices.py", *field_files]
    return sorted(flags), defaults, choices, read


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("vllm", "sglang"):
        print(__doc__)
        return 2
    engine, whl = argv[0], Path(argv[1])
    m = re.match(rf"{engine}-([0-9][^-]*)-", whl.name)
    if not m:
        print(f"cannot read the version from {whl.name}")
        return 2
    version = m.group(1)
    flags, defaults, choices, files = (vllm if engine == "vllm" else sglang)(whl)
    out = {"engine": engine, "version": version,
           "source": f"{whl.name} (PyPI), read by scripts/extract_engine_flags.py: {'; '.join(files)}",
           "defaults": defaults, "choices": choices, "flags": flags}
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{engine}-{version}.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: {len(flags)} flags; defaults {defaults}; "
          + "; ".join(f"{k}: {len(v)} choices" for k, v in choices.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
