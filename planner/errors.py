"""The error taxonomy: what went wrong, where, and how to fix it.

Bad input and missing data exit with code 2; an infeasible problem is an answer
(exit 1), not an error, and is represented by results, not by these classes.
Unexpected bugs are not caught and keep their traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PlannerError(Exception):
    """Base class for errors the user can fix; carries the process exit code."""

    exit_code = 2


class InputError(PlannerError):
    """Input that is wrong: names the file, the YAML path, the value and what is accepted."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str | None = None,
        value: object = None,
        accepted: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.path = path
        self.value = value
        self.accepted = accepted
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.path:
            where = f"{where}: {self.path}" if where else self.path
        text = f"{where}: {self.message}" if where else self.message
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.accepted:
            text += f"; accepted: {self.accepted}"
        return text

    def located(self, *, file: str | None = None, prefix: str | None = None) -> InputError:
        """Return a copy placed inside a file and under a YAML path prefix."""
        path = self.path
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        return type(self)(
            self.message,
            file=file or self.file,
            path=path,
            value=self.value,
            accepted=self.accepted,
            line=self.line,
        )


class MissingDataError(InputError):
    """A datum the computation needs is absent from the catalog; never invented."""


def unknown_name(kind: str, name: str, known: Iterable[str], **where: object) -> InputError:
    """An unknown catalog name, with the nearest known names as suggestions."""
    known = sorted(known)
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    return InputError(
        f"unknown {kind} {name!r}; {hint}known {kind}s are listed after 'accepted'",
        accepted=", ".join(known),
        **where,  # type: ignore[arg-type]
    )
