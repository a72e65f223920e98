"""Strict YAML loading with locations, and mapping validation errors back to them.

Safe by construction: explicit tags, anchors and aliases are refused (aliases allow
exponential "billion laughs" blow-ups), duplicate keys are refused, and the file size is
bounded. Every loaded value keeps its line so that an error can name file, YAML path,
line and value.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import InputError

MAX_YAML_BYTES = 2 * 1024 * 1024
"""Largest YAML file accepted (2 MiB): far above any real instance, far below trouble."""

_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass
class Document:
    """A loaded YAML document: plain data plus the line of every path in it."""

    data: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, path: tuple) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, message: str, path: tuple, value: object = None, accepted: str | None = None) -> InputError:
        return InputError(
            message, file=self.file, path=format_path(path), value=value,
            accepted=accepted, line=self.line_of(path),
        )

    def validate(self, model: type[BaseModel], data: Any = None, prefix: tuple = ()) -> Any:
        """Validate ``data`` (default: the whole document) against a pydantic model."""
        try:
            return model.model_validate(self.data if data is None else data)
        except ValidationError as exc:
            raise self.from_validation(exc, model, prefix) from None

    def from_validation(self, exc: ValidationError, model: type[BaseModel], prefix: tuple = ()) -> InputError:
        first = exc.errors()[0]
        path = prefix + tuple(p for p in first["loc"] if not _is_internal(p))
        message = first["msg"]
        accepted = None
        ctx = first.get("ctx") or {}
        if first["type"] == "extra_forbidden":
            allowed = allowed_keys(model, [p for p in first["loc"] if not _is_internal(p)])
            message = f"unknown key {path[-1]!r}"
            accepted = allowed
        elif "expected" in ctx:
            accepted = str(ctx["expected"])
        value = first.get("input")
        if isinstance(value, dict | list):
            value = None
        extra = len(exc.errors()) - 1
        if extra:
            message += f" (and {extra} more problem{'s' if extra > 1 else ''} in this document)"
        return self.error(message, path, value, accepted)


def _is_internal(part: object) -> bool:
    # pydantic adds tags such as 'function-after[...]' or union member names to locations
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def allowed_keys(model: type[BaseModel], loc: list) -> str | None:
    """The keys accepted at the mapping that holds ``loc[-1]`` (for unknown-key errors)."""
    ann: Any = model
    for part in loc[:-1]:
        ann = _step(ann, part)
        if ann is None:
            return None
    target = _as_model(ann)
    if target is None:
        return None
    return ", ".join(target.model_fields)


def _step(ann: Any, part: object) -> Any:
    target = _as_model(ann)
    if target is not None and isinstance(part, str) and part in target.model_fields:
        return target.model_fields[part].annotation
    origin = get_origin(ann)
    if origin is dict:
        return get_args(ann)[1]
    if origin in (list, tuple):
        return get_args(ann)[0]
    for arg in get_args(ann):
        found = _step(arg, part)
        if found is not None:
            return found
    return None


def _as_model(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    if get_origin(ann) in (Union, UnionType, Annotated):
        for arg in get_args(ann):
            found = _as_model(arg)
            if found is not None:
                return found
    return None


def format_path(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document root)"


def load_yaml(path: str | os.PathLike, *, max_bytes: int = MAX_YAML_BYTES) -> Document:
    """Load one YAML file strictly. Raises InputError with the file named."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=name)
    if not p.is_file():
        raise InputError("not a regular file", file=name)
    size = p.stat().st_size
    if size > max_bytes:
        raise InputError(
            f"file is {size} bytes, above the limit of {max_bytes} bytes for one YAML document",
            file=name,
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=name) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str = "<string>") -> Document:
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.TagToken):
                raise InputError(
                    "explicit YAML tags are not accepted", file=name,
                    line=token.start_mark.line + 1, value=token.value[1] if token.value else None,
                )
            if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
                raise InputError(
                    "YAML anchors and aliases are not accepted; write the values out",
                    file=name, line=token.start_mark.line + 1,
                )
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(
            f"not valid YAML: {problem}", file=name,
            line=mark.line + 1 if mark else None,
        ) from None
    doc = Document(data=None, file=name)
    if node is None:
        doc.data = {}
        return doc
    doc.data = _build(node, (), doc)
    return doc


def _build(node: yaml.Node, path: tuple, doc: Document) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise doc.error("mapping keys must be plain scalars", path)
            key = _CONSTRUCTOR.construct_object(key_node)
            if key in out:
                doc.lines[path + (key,)] = key_node.start_mark.line + 1
                raise doc.error(
                    f"duplicate key {key!r} (first given above, again on line "
                    f"{key_node.start_mark.line + 1})", path + (key,),
                )
            out[key] = _build(value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), doc) for i, item in enumerate(node.value)]
    return _CONSTRUCTOR.construct_object(node)


def write_atomically(path: str | os.PathLike, text: str, *, protected: tuple[str | os.PathLike, ...] = ()) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename), never over an input."""
    target = Path(path).resolve()
    for other in protected:
        if Path(other).resolve() == target:
            raise InputError("refusing to overwrite an input file with output", file=str(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
