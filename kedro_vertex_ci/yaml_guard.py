"""Read one YAML config file defensively: every way a file can be unreadable becomes one located error.

Kedro's loader (OmegaConf over PyYAML) reads ``vertexai.yml`` as it reads any config file; on a hostile or
broken file it raises whatever PyYAML or Python raise (UnicodeDecodeError, RecursionError, ValueError from
a 5000-digit integer, MemoryError from alias expansion) without naming the file. :func:`read_document`
runs first, on the very bytes Kedro will read, and turns each of those into a :class:`ConfigError` naming
the file and line; it also returns where each key is, for the messages of later checks. Pure: bytes in,
values or ConfigError out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

from .errors import ConfigError, Problem

MAX_BYTES = 1_000_000  # a vertexai.yml describing thousands of nodes stays far below this
MAX_DEPTH = 40  # nesting, counted after alias expansion; the deepest real key path has 6 levels
MAX_NODES = 100_000  # values after alias expansion ("billion laughs" stops here)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml when present (10x faster); PyYAML's own reader rule for characters is applied first either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class YamlDocument:
    """A config file that passed :func:`read_document`: its text and the line of every key path."""

    path: str
    text: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    leaves: frozenset[KeyPath] = frozenset()


def _fail(path: str, message: str, line: int | None = None, key: str = "") -> ConfigError:
    return ConfigError([Problem(path, key, message, line)])


def decode(path: str, data: bytes) -> str:
    """UTF-8 text (what Kedro's loader decodes), or an error naming the line of the first bad byte."""
    if len(data) > MAX_BYTES:
        raise _fail(path, f"is {len(data):,} bytes; a config file over {MAX_BYTES:,} bytes is refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise _fail(
            path, f"is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save it as UTF-8", line
        ) from None


def _problem_line(err: yaml.YAMLError, text: str) -> int | None:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(err, "position", None)  # ReaderError: a character YAML does not allow
    return text[:position].count("\n") + 1 if isinstance(position, int) else None


def _yaml_message(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.reader.ReaderError):
        char = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "?")
        return f"holds a character YAML does not allow (U+{char:04X}); remove it"
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    return f"not valid YAML: {problem}" + (f" ({context})" if context and context not in str(problem) else "")


def _check_characters(path: str, text: str) -> None:
    """PyYAML's (Kedro's) rule for characters a YAML file may hold, with the line of the first offender."""
    match = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if match:
        line = text[: match.start()].count("\n") + 1
        raise _fail(path, f"holds a character YAML does not allow (U+{ord(match.group()):04X}); remove it", line)


def _mark_line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else None


def _check_nesting(path: str, text: str) -> bool:
    """Refuse deep nesting from the event stream (iterative) before anything recursive sees the file.

    Returns whether the file uses aliases (only then can its expansion outgrow the text).
    """
    depth = 0
    aliases = False
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            aliases = True
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _fail(path, f"nests deeper than {MAX_DEPTH} levels", _mark_line(event))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return aliases


def _compose(path: str, text: str) -> tuple[yaml.Node | None, bool]:
    """The document's node graph, and whether it uses aliases."""
    try:
        _check_characters(path, text)
        aliases = _check_nesting(path, text)
        return yaml.compose(text, Loader=_LOADER), aliases
    except yaml.YAMLError as err:
        if "nesting depth" in str(err):  # libyaml's own limit, met before ours on very deep flow nesting
            raise _fail(path, f"nests deeper than {MAX_DEPTH} levels", _problem_line(err, text)) from None
        raise _fail(path, _yaml_message(err), _problem_line(err, text)) from None
    except RecursionError:
        raise _fail(path, f"nests deeper than {MAX_DEPTH} levels") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(path: str, root: yaml.Node) -> None:
    """Count values and depth as a loader would expand aliases, refusing self-reference and blow-ups.

    Iterative post-order over the node graph, memoised per node, so a billion-laughs file costs its number
    of distinct nodes, not its expansion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            in_progress.discard(key)
            if size[key] > MAX_NODES:
                raise _fail(path, f"expands to more than {MAX_NODES:,} values (aliases repeating aliases?)",
                            node.start_mark.line + 1)
            if depth[key] > MAX_DEPTH:
                raise _fail(path, f"nests deeper than {MAX_DEPTH} levels once its aliases are expanded",
                            node.start_mark.line + 1)
            continue
        if key in size:
            continue
        in_progress.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in in_progress:
                raise _fail(path, "an alias refers to the value that contains it (endless recursion)",
                            child.start_mark.line + 1)
            if id(child) not in size:
                stack.append((child, False))


def _walk(root: yaml.Node) -> Iterator[tuple[yaml.Node, KeyPath]]:
    """Every node with its key path, aliases expanded (bounded by :func:`_check_expansion`)."""
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, key_path = stack.pop()
        yield node, key_path
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    stack.append((value_node, (*key_path, str(key_node.value))))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*key_path, str(i))) for i, item in enumerate(node.value))


def _check_mapping(path: str, node: yaml.MappingNode, key_path: KeyPath) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == _MERGE_TAG:
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise _fail(path, "a key is a list or mapping; keys must be plain words", line, ".".join(key_path))
        ident = (key_node.tag, key_node.value)
        if ident in seen:
            dotted = ".".join((*key_path, key_node.value))
            raise _fail(path, f"duplicate key (first set on line {seen[ident]}); keep one", line, dotted)
        seen[ident] = line


def _check_values(path: str, root: yaml.Node) -> None:
    """Each scalar must construct as PyYAML's safe loader builds it; collections carry no foreign tags."""
    constructor = yaml.constructor.SafeConstructor()
    for node, key_path in _walk(root):
        line = node.start_mark.line + 1
        dotted = ".".join(key_path)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                raise _fail(path, f"unsupported YAML tag {node.tag!r}", line, dotted)
            _check_mapping(path, node, key_path)
        elif isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise _fail(path, f"unsupported YAML tag {node.tag!r}", line, dotted)
        elif isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node)
            except (yaml.YAMLError, ValueError, KeyError, TypeError, OverflowError) as err:
                shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
                kind = node.tag.rsplit(":", 1)[-1]
                reason = _construct_reason(kind, err)
                raise _fail(path, f"cannot read {shown!r} as {kind}: {reason}", line, dotted) from None


def _construct_reason(kind: str, err: BaseException) -> str:
    if kind == "bool" and isinstance(err, KeyError):
        return "a bool is one of true/false, yes/no, on/off"
    reason = getattr(err, "problem", None) or (str(err).splitlines() or [type(err).__name__])[0]
    return str(reason)[:200]


def _key_lines(root: yaml.Node | None) -> tuple[dict[KeyPath, int], frozenset[KeyPath]]:
    lines: dict[KeyPath, int] = {}
    leaves: set[KeyPath] = set()
    if root is None:
        return lines, frozenset()
    for node, key_path in _walk(root):
        if key_path:
            lines.setdefault(key_path, node.start_mark.line + 1)
            if not isinstance(node, yaml.MappingNode):
                leaves.add(key_path)
    return lines, frozenset(leaves)


def _key_lines_of_mapping(root: yaml.Node | None) -> dict[KeyPath, int]:
    """Lines of the keys themselves (a value can start on a later line than its key)."""
    lines: dict[KeyPath, int] = {}
    if root is None:
        return lines
    for node, key_path in _walk(root):
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    lines.setdefault((*key_path, str(key_node.value)), key_node.start_mark.line + 1)
    return lines


def read_document(path: str, data: bytes | str) -> YamlDocument:
    """Check one config file the way Kedro will read it; the document, or ConfigError with file and line."""
    text = decode(path, data) if isinstance(data, bytes) else data
    if isinstance(data, str) and len(text) > MAX_BYTES:
        raise _fail(path, f"is {len(text):,} characters; a config file over {MAX_BYTES:,} is refused")
    root, aliases = _compose(path, text)
    if root is not None:
        if aliases:
            _check_expansion(path, root)
        _check_values(path, root)
    value_lines, leaves = _key_lines(root)
    lines = {**value_lines, **_key_lines_of_mapping(root)}
    _remember_lines(text, lines)
    return YamlDocument(path=path, text=text, lines=lines, leaves=leaves)


_RECENT_LINES: dict[str, dict[KeyPath, int]] = {}


def _remember_lines(text: str, lines: dict[KeyPath, int]) -> None:
    """Keep the last few documents' key lines: the locator asks for the files just read."""
    _RECENT_LINES[text] = lines
    while len(_RECENT_LINES) > 8:
        del _RECENT_LINES[next(iter(_RECENT_LINES))]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Key path → line for text that may be anything (never raises; empty when unreadable or hostile)."""
    if text in _RECENT_LINES:
        return _RECENT_LINES[text]
    try:
        return read_document("", text).lines
    except (ConfigError, RecursionError, MemoryError):
        return {}
