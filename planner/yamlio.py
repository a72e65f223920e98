"""Strict YAML loading with locations, and mapping validation errors back to them.

Safe by construction: explicit tags, anchors and aliases are refused (aliases allow
exponential "billion laughs" blow-ups), duplicate keys are refused, and the file size is
bounded. Every loaded value keeps its line so that an error can name file, YAML path,
line and value.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, BinaryIO, Union, get_args, get_origin

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
    lines: dict[tuple, int | None] = field(default_factory=dict)

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

    def require_mapping(self, what: str) -> dict:
        """The document's data, which must be a mapping (``what``: "an instance file", ...)."""
        if not isinstance(self.data, dict):
            raise InputError(f"{what} must be a YAML mapping", file=self.file)
        return self.data

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
        if first["type"] == "value_error" and ctx.get("error") is not None:
            message = str(ctx["error"])     # our validator's own words, without the library's prefix
        if first["type"] == "extra_forbidden":
            allowed = allowed_keys(model, [p for p in first["loc"] if not _is_internal(p)])
            message = f"unknown key {path[-1]!r}"
            accepted = allowed
        elif first["type"] == "missing":
            accepted = required_keys(model, [p for p in first["loc"] if not _is_internal(p)])
        elif "expected" in ctx:
            accepted = str(ctx["expected"])
        elif first["type"] == "finite_number":
            accepted = "a finite number"       # NaN and infinity are refused (allow_inf_nan=False)
        elif any(k in ctx for k in ("gt", "ge", "lt", "le")):
            accepted = " and ".join(f"{op} {ctx[k]}" for k, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
                                    if k in ctx)
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
    target = _holder(model, loc)
    return None if target is None else ", ".join(target.model_fields)


def required_keys(model: type[BaseModel], loc: list) -> str | None:
    """The keys the mapping that holds ``loc[-1]`` needs, and the others it accepts (for a
    missing key)."""
    target = _holder(model, loc)
    if target is None:
        return None
    needed = [k for k, f in target.model_fields.items() if f.is_required()]
    others = [k for k in target.model_fields if k not in needed]
    return f"a mapping with {', '.join(needed)}" + (f" (optional: {', '.join(others)})" if others else "")


def _holder(model: type[BaseModel], loc: list) -> type[BaseModel] | None:
    """The model of the mapping that holds ``loc[-1]``, or None."""
    ann: Any = model
    for part in loc[:-1]:
        ann = _step(ann, part)
        if ann is None:
            return None
    return _as_model(ann)


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


MAX_DEPTH = 64
"""Deepest nesting accepted: real instances nest 4 levels; recursion never depends on input."""

MAX_INT_DIGITS = 100
"""Longest integer literal accepted: no quantity needs more, and Python refuses 4,300+."""

_RESOLVER = yaml.resolver.Resolver()
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: linear and fast


# --- Files read in this run: an output never replaces one of them ---------------------

_READ: set = set()


def record_read(path: str | os.PathLike) -> None:
    """Remember that this run read ``path`` (by real path and by inode, so links count)."""
    _READ.add(os.path.realpath(path))
    try:
        st = os.stat(path)
        _READ.add((st.st_dev, st.st_ino))
    except OSError:
        pass


def reset_reads() -> None:
    """Forget the files read (each CLI command starts a new run)."""
    _READ.clear()


def was_read(path: str | os.PathLike) -> bool:
    if os.path.realpath(path) in _READ:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in _READ


def open_bounded(path: str | os.PathLike, max_bytes: int, what: str = "file") -> BinaryIO:
    """Open a user's file for reading in binary: a regular file of at most ``max_bytes``.
    Every failure is an InputError naming the file; the file is recorded as read."""
    name = str(path)
    try:
        if not os.path.exists(path):
            raise InputError(f"{what} not found", file=name)
        if os.path.isdir(path):
            raise InputError(f"{what} is a directory, not a file", file=name)
        if not os.path.isfile(path):
            raise InputError("not a regular file", file=name)
        size = os.path.getsize(path)
        if size > max_bytes:
            raise InputError(f"file is {size} bytes, above the limit of {max_bytes} bytes", file=name)
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", file=name) from None
    record_read(path)
    return fh


def read_text_bounded(path: str | os.PathLike, max_bytes: int, what: str = "file") -> str:
    """Read a user's text file: regular file, at most ``max_bytes``, UTF-8 (a BOM is allowed).
    Every failure is an InputError naming the file; the file is recorded as read."""
    name = str(path)
    with open_bounded(path, max_bytes, what) as fh:
        try:
            raw = fh.read(max_bytes + 1)
        except OSError as exc:
            raise InputError(f"cannot read {what}: {exc.strerror or exc}", file=name) from None
    if len(raw) > max_bytes:
        raise InputError(f"file is above the limit of {max_bytes} bytes", file=name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=name) from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a file may hold")


def load_json(path: str | os.PathLike, max_bytes: int, what: str = "JSON file", *, constants: bool = False) -> Any:
    """Read a user's JSON file: bounded as read_text_bounded, NaN and Infinity refused (read as
    floats with ``constants``), and any parse failure (nesting too deep for the parser's
    recursion included) an InputError naming the file."""
    name = str(path)
    text = read_text_bounded(path, max_bytes, what)
    try:
        return json.loads(text) if constants else json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:          # JSONDecodeError, and integers over Python's digit limit
        raise InputError(f"not a valid {what}: {' '.join(str(exc).split())[:200]}", file=name) from None
    except RecursionError:
        raise InputError(f"not a valid {what}: nested too deeply", file=name) from None


def load_yaml(path: str | os.PathLike, *, max_bytes: int = MAX_YAML_BYTES) -> Document:
    """Load one YAML file strictly. Raises InputError with the file named."""
    name = str(path)
    try:
        size = os.path.getsize(path) if os.path.isfile(path) else None
    except OSError:
        size = None
    if size is not None and size > max_bytes:
        raise InputError(
            f"file is {size} bytes, above the limit of {max_bytes} bytes for one YAML document",
            file=name,
        )
    return parse_yaml(read_text_bounded(path, max_bytes), name)


def parse_yaml(text: str, name: str = "<string>") -> Document:
    """Parse one YAML document from events, without recursion: the depth, the size of
    integers, tags, anchors, aliases, merge keys and duplicate keys are checked as read.

    libyaml (the fast parser) may refuse a file in its own words before the planner's checks
    see its events (it scans up to 1,024 characters ahead and stops at 1,000 levels of
    nesting); a file it refuses is read again by PyYAML's own parser, so that the planner's
    checks come first and only a file that is not YAML gets the parser's words."""
    if text.startswith("\ufeff"):
        text = text[1:]
    error: yaml.YAMLError | None = None
    for loader in dict.fromkeys((_LOADER, yaml.SafeLoader)):
        try:
            return _parse(text, name, loader)
        except yaml.YAMLError as exc:
            error = exc
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    raise InputError(f"not valid YAML: {problem}", file=name, line=mark.line + 1 if mark else None)


def _parse(text: str, name: str, loader: Any) -> Document:
    """One pass of ``parse_yaml`` with one parser; its YAMLError is the caller's."""
    doc = Document(data=None, file=name)
    stack: list[list] = []        # [container, path, pending key or _NO_KEY, key line]
    root: list = []
    documents = 0
    for ev in yaml.parse(text, Loader=loader):
        line = ev.start_mark.line + 1 if ev.start_mark is not None else None
        if isinstance(ev, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise InputError("only one YAML document per file is accepted", file=name, line=line)
            continue
        if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None):
            raise InputError("YAML anchors and aliases are not accepted; write the values out",
                             file=name, line=line)
        if isinstance(ev, yaml.ScalarEvent | yaml.CollectionStartEvent) and ev.tag is not None:
            raise InputError("explicit YAML tags are not accepted", file=name, line=line, value=ev.tag)
        if isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            continue
        if isinstance(ev, yaml.ScalarEvent):
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent[0], dict) and parent[2] is _NO_KEY:
                key = _scalar(ev, doc, parent[1], line)
                if key == "<<" and ev.implicit[0]:
                    raise doc_error(doc, "YAML merge keys ('<<') are not accepted; write the keys out",
                                    parent[1], line)
                if key in parent[0]:
                    doc.lines[parent[1] + (key,)] = line
                    raise doc.error(f"duplicate key {key!r} (first given above, again on line {line})",
                                    parent[1] + (key,))
                parent[2], parent[3] = key, line
                continue
            path = _child_path(stack)
            _attach(stack, root, _scalar(ev, doc, path, line), path, doc, line)
            continue
        if isinstance(ev, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent[0], dict) and parent[2] is _NO_KEY:
                raise doc_error(doc, "mapping keys must be plain scalars", parent[1], line)
            path = _child_path(stack)
            if len(path) >= MAX_DEPTH:
                raise doc_error(doc, f"nesting deeper than {MAX_DEPTH} levels", path[:3] + ("...",), line)
            container: Any = {} if isinstance(ev, yaml.MappingStartEvent) else []
            _attach(stack, root, container, path, doc, line)
            stack.append([container, path, _NO_KEY, None])
    doc.data = root[0] if root else {}
    if not root:
        doc.lines[()] = 1
    return doc


class _NoKey:
    def __repr__(self) -> str:
        return "<no key>"


_NO_KEY = _NoKey()


def doc_error(doc: Document, message: str, path: tuple, line: int | None) -> InputError:
    return InputError(message, file=doc.file, path=format_path(path) if path else None, line=line)


def _child_path(stack: list) -> tuple:
    if not stack:
        return ()
    container, path, key, _ = stack[-1]
    return path + ((len(container),) if isinstance(container, list) else (key,))


def _attach(stack: list, root: list, value: Any, path: tuple, doc: Document, line: int | None) -> None:
    doc.lines[path] = line
    if not stack:
        root.append(value)
        return
    parent = stack[-1]
    if isinstance(parent[0], list):
        parent[0].append(value)
    else:
        parent[0][parent[2]] = value
        parent[2] = _NO_KEY


def _scalar(ev: yaml.ScalarEvent, doc: Document, path: tuple, line: int | None) -> Any:
    """A scalar as SafeLoader would type it, with its failures turned into located errors."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, ev.value, ev.implicit) if ev.tag in (None, "!") else ev.tag
    if tag in ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"):
        return ev.value                                   # '<<' and '=' as plain text
    if tag == "tag:yaml.org,2002:int" and sum(c.isdigit() for c in ev.value) > MAX_INT_DIGITS:
        raise InputError(f"integer with more than {MAX_INT_DIGITS} digits", file=doc.file,
                         path=format_path(path) if path else None, line=line,
                         value=ev.value[:20] + "...", accepted="a number of physical size")
    node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)  # type: ignore[arg-type]
    try:
        return _CONSTRUCTOR.yaml_constructors.get(tag, type(_CONSTRUCTOR).construct_undefined)(_CONSTRUCTOR, node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read this value: {exc}".split("\n")[0], file=doc.file,
                         path=format_path(path) if path else None, line=line, value=ev.value[:40]) from None


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for row in fh:
                if row.startswith("Umask:"):
                    return int(row.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


_STAGE: ContextVar[dict[str, tuple[bytes, str | None]] | None] = ContextVar("planner_outputs", default=None)


@contextmanager
def staged_outputs() -> Iterator[None]:
    """Inside this block write_atomically checks each target at once but writes nothing; when the
    block ends normally every staged file is written (commit_outputs), and when it raises none is.
    One command's outputs appear all together or not at all (docs/exit-codes.md)."""
    stage: dict[str, tuple[bytes, str | None]] = {}
    token = _STAGE.set(stage)
    try:
        yield
    finally:
        _STAGE.reset(token)
    commit_outputs(stage)


def check_output(path: str | os.PathLike, *, protected: tuple[str | os.PathLike, ...] = (),
                 option: str | None = None) -> str:
    """Check that ``path`` can be an output of this run, before any work fills it; return its real
    path. Never a file this run read (``record_read``) or one named in ``protected``, never a
    folder or a special file, and its nearest existing folder must be writable."""
    name = str(path)
    where: dict[str, Any] = {"file": name, "path": option}
    try:
        real = os.path.realpath(path)
        try:
            os.stat(real)                           # a symlink loop or an unreadable path fails here
        except FileNotFoundError:
            pass
    except OSError as exc:
        raise InputError(f"cannot write output: {exc.strerror or exc}", **where) from None
    if was_read(path) or any(os.path.realpath(p) == real for p in protected):
        raise InputError("refusing to overwrite a file this run read as input", **where)
    if os.path.isdir(real):
        raise InputError("the output path is a directory", **where)
    if os.path.lexists(real) and not os.path.isfile(real):
        raise InputError("the output path exists and is not a regular file", **where)
    parent = os.path.dirname(real) or "."
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent) or "."
    if not os.path.isdir(parent):
        raise InputError("a folder on the output path is a file", value=parent, **where)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("the output folder is not writable", value=parent, **where)
    return real


def write_atomically(path: str | os.PathLike, data: str | bytes, *, protected: tuple[str | os.PathLike, ...] = (),
                     option: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename), after
    check_output; inside staged_outputs() the write waits for the end of the block.

    A new file gets mode 0666 & ~umask; a replaced file keeps its mode. Every OSError becomes an
    InputError naming the path (exit 2)."""
    real = check_output(path, protected=protected, option=option)
    stage = _STAGE.get()
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if stage is not None:
        stage[real] = (raw, option)
    else:
        commit_outputs({real: (raw, option)})


def commit_outputs(files: dict[str, tuple[bytes, str | None]]) -> None:
    """Write every file or none: each into a temporary file beside its target (folders made as
    needed), then every temporary renamed over its target; on a failure the temporaries and the
    folders this made are removed and nothing is replaced."""
    temps: list[tuple[str, str]] = []
    made: list[str] = []
    done = False
    real, option = "", None
    try:
        for real, (raw, option) in files.items():
            parent = os.path.dirname(real) or "."
            missing = []
            while not os.path.lexists(parent):
                missing.append(parent)
                parent = os.path.dirname(parent) or "."
            for folder in reversed(missing):
                os.mkdir(folder)
                made.append(folder)
            mode = (os.stat(real).st_mode & 0o7777) if os.path.exists(real) else (0o666 & ~_umask())
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(real) or ".", prefix=f".{os.path.basename(real)}.",
                                       suffix=".tmp")
            temps.append((tmp, real))
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), mode)
                fh.write(raw)
        for tmp, real in temps:
            os.replace(tmp, real)
        done = True
    except OSError as exc:
        raise InputError(f"cannot write output: {exc.strerror or exc}", file=real, path=option) from None
    finally:
        if not done:
            for tmp, _ in temps:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            for folder in reversed(made):
                try:
                    os.rmdir(folder)
                except OSError:
                    pass


def dump_json(data: Any) -> str:
    """Strict JSON: a figure that is not a number (TPOT of a one-token answer, a rate no load
    reaches) is null, never NaN or Infinity."""
    return json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False, default=_default) + "\n"


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float as None and numpy scalars as Python's."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        return _finite(x.item())
    return x


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")
