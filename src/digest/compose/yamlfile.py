"""The line-aware YAML reader for issue files: values with the lines they start on, and the limits
that keep a hostile file (an alias bomb, a self-referencing alias, 5,000 nested lists) from
stalling anything: it fails in milliseconds with an error naming the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from digest.errors import IssueError

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 20  # nesting of mappings and lists; an issue needs 4
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~30x faster


class Node:
    """A YAML value together with the line it starts on."""

    __slots__ = ("value", "line", "key_lines")

    def __init__(self, value: Any, line: int, key_lines: dict[str, int] | None = None):
        self.value = value
        self.line = line
        self.key_lines = key_lines or {}


def _convert(node: yaml.Node, where: Path) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise IssueError(f"{where}:{key_node.start_mark.line + 1}: keys must be plain words.")
            key = key_node.value
            if key in out:
                raise IssueError(f"{where}:{key_node.start_mark.line + 1}: '{key}' is given twice "
                                 f"(first on line {key_lines[key]}).", "keep one of them")
            key_lines[key] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, where)
        return Node(out, line, key_lines)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(n, where) for n in node.value], line)
    # Scalars stay strings (YAML 1.1 would turn "no" into False and dates into objects); only an
    # explicit null (~, null, or nothing) becomes None.
    if node.tag == "tag:yaml.org,2002:null" and node.style is None:
        return Node(None, line)
    return Node(node.value, line)


def _check_structure(text: str, path: Path) -> None:
    """Refuse anchors, aliases and deep nesting before composing: an alias bomb expands to billions
    of nodes, a self-referencing alias or 5,000 nested lists recurse without end."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_FAST_LOADER):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise IssueError(f"{path}:{event.start_mark.line + 1}: anchors and aliases (&name, *name) are "
                                 "not allowed in issue files.", "write the value out where it is used")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _too_deep(path, event.start_mark)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml has a nesting limit of its own, met while it looks ahead inside [ [ [ …
        if "nesting depth" in str(exc.problem) and exc.problem_mark is not None:
            raise _too_deep(path, exc.problem_mark) from None
    except yaml.YAMLError:
        pass  # composing reports it, at the same place, in the usual words


def _too_deep(path: Path, mark) -> IssueError:
    return IssueError(f"{path}:{mark.line + 1}: the file is nested more than {MAX_DEPTH} levels deep.",
                      "an issue needs four: sections, a section, its image or cta, their fields")


def parse_issue_yaml(path: Path) -> Node:
    """The file's YAML as Nodes with lines; an IssueError naming the file (and line) for anything else."""
    text = _read(path)
    _check_structure(text, path)
    try:
        try:
            node = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            node = yaml.compose(text, Loader=yaml.SafeLoader)  # to report it in PyYAML's clearer words
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise IssueError(f"{path}{line}: broken YAML: {problem}.",
                         "check indentation and quote values that contain ': ' or start with a symbol")
    except yaml.YAMLError as exc:
        raise IssueError(f"{path}: broken YAML: {exc}.")
    if node is None:
        raise IssueError(f"{path}: the file is empty.", "see the README's 'Issue files' section for the format")
    return _convert(node, path)


def _read(path: Path) -> str:
    """The file's text, if it is there, small enough and UTF-8."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise IssueError(f"{path}: the file is {size // 1024:,} KB; an issue file may be at most "
                             f"{MAX_FILE_BYTES // 1024} KB.", "split it into several issues, or link to the "
                             "long parts on the web (Gmail clips emails over ~102 KB)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IssueError(f"{path}: no such issue file.", "check the name, or run `digest new \"Title\"`")
    except UnicodeDecodeError as exc:
        raise IssueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).",
                         "save the file as UTF-8")
    return text
