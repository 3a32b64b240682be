"""Runs API-format workflow JSON through node classes the way ComfyUI's executor does, without ComfyUI.

An API workflow is ``{"<id>": {"class_type": str, "inputs": {name: literal | ["<src id>", slot]}}}``. The runner
validates it like ComfyUI's validator (unknown class, missing required input, bad link, link type mismatch, a
literal outside min/max or not in a combo list, ``VALIDATE_INPUTS``), then executes the needed nodes in dependency
order under ``torch.inference_mode()`` (as ComfyUI does) and returns every node's outputs.

Used by the tests (example workflows on tiny models) and by ``cli.py run`` / ``cli.py demo``.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

logger = logging.getLogger(__name__)

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


@dataclass
class Problem:
    """One validation problem, shaped like an entry of ComfyUI's ``node_errors``."""

    node_id: str
    class_type: str
    kind: str  # ComfyUI's error type, e.g. required_input_missing, return_type_mismatch, value_not_in_list
    message: str
    input_name: str | None = None

    def __str__(self) -> str:
        where = f"node {self.node_id} ({self.class_type})"
        if self.input_name:
            where += f", input '{self.input_name}'"
        return f"{where}: {self.message} [{self.kind}]"


class WorkflowError(ValueError):
    """The workflow cannot run; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("Workflow is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


class NodeExecutionError(RuntimeError):
    """A node raised while running; the original exception is ``__cause__``."""

    def __init__(self, node_id: str, class_type: str, exc: BaseException):
        self.node_id, self.class_type = node_id, class_type
        super().__init__(f"Node {node_id} ({class_type}) failed: {type(exc).__name__}: {exc}")


@dataclass
class RunResult:
    outputs: dict[str, tuple] = field(default_factory=dict)  # node id -> output tuple
    ui: dict[str, dict] = field(default_factory=dict)  # node id -> the node's "ui" dict, if any
    order: list[str] = field(default_factory=list)  # node ids in the order they ran


# ------------------------------------------------------------------------------------------------------------
# Loading


def load_workflow(path: str | Path) -> dict:
    """Read an API-format workflow; a UI-format file gets an error that says how to export the API format."""
    from ..pipelines.json_input import parse_json

    remedy = "Export it again with 'Workflow > Export (API)' in ComfyUI."
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"Workflow file '{path}' is not UTF-8 text ({exc.reason}). {remedy}") from None
    data = parse_json(text, f"Workflow file '{path}'", remedy)
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise WorkflowError([Problem("-", "-", "ui_format", f"{path} is a UI-format workflow; export it with "
                                     "'Workflow > Export (API)' in ComfyUI and run that file.")])
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict):
        data = data["prompt"]  # a saved /prompt request body
    if not isinstance(data, dict) or not all(isinstance(node, dict) for node in data.values()):
        raise ValueError(f"Workflow file '{path}' is not an API-format workflow (a JSON object of nodes, each with "
                         f"'class_type' and 'inputs'). {remedy}")
    return data


def is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def find_node(workflow: Mapping, ref: str) -> str:
    """The id of node ``ref``: a node id, or a title (``_meta.title``, as ComfyUI exports it) one node carries."""
    ref = str(ref).strip()
    if ref in workflow:
        return ref
    titled = [str(nid) for nid, node in workflow.items()
              if isinstance(node, Mapping) and (node.get("_meta") or {}).get("title") == ref]
    if len(titled) == 1:
        return titled[0]
    if titled:
        raise ValueError(f"Node title {ref!r} is carried by nodes {', '.join(titled)}; use one of those ids.")
    names = ", ".join(f"{nid} ({(node.get('_meta') or {}).get('title') or node.get('class_type', '?')})"
                      for nid, node in workflow.items() if isinstance(node, Mapping))
    raise ValueError(f"The workflow has no node with id or title {ref!r}. Nodes: {names}.")


def input_names(cls) -> list[str]:
    """The inputs a node class declares (required, then optional), as ``--set`` may address them."""
    spec = cls.INPUT_TYPES()
    return [name for section in ("required", "optional") for name in (spec.get(section) or {})]


def set_input(workflow: dict, assignment: str, classes: Mapping[str, type] | None = None) -> str:
    """Apply a ``NODE.INPUT=VALUE`` override and return the node id. NODE is a node id or a unique node title; the
    value is parsed as JSON when it can be, else kept as a string. With ``classes``, an input the node does not
    declare is an error listing the inputs it has (ComfyUI would silently ignore it)."""
    target, sep, raw = assignment.partition("=")
    node_ref, dot, input_name = target.rpartition(".")  # titles may hold dots; input names never do
    if not sep or not dot or not node_ref.strip() or not input_name.strip():
        raise ValueError(f"--set expects NODE.INPUT=VALUE (NODE: a node id or title), got {assignment!r}.")
    try:
        node_id = find_node(workflow, node_ref)
    except ValueError as exc:
        raise ValueError(f"--set {assignment!r}: {exc}") from None
    input_name = input_name.strip()
    cls = (classes or {}).get(workflow[node_id].get("class_type"))
    if cls is not None and input_name not in input_names(cls):
        raise ValueError(f"--set {assignment!r}: node {node_id} ({workflow[node_id]['class_type']}) has no input "
                         f"'{input_name}'. Its inputs: {', '.join(input_names(cls))}.")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    workflow[node_id].setdefault("inputs", {})[input_name] = value
    return node_id


# ------------------------------------------------------------------------------------------------------------
# Validation


def _input_specs(cls) -> dict[str, tuple[str, Any, dict]]:
    """name -> (section, type, options) over required/optional/hidden."""
    spec = cls.INPUT_TYPES()
    specs = {}
    for section in ("required", "optional", "hidden"):
        for name, entry in (spec.get(section) or {}).items():
            if section == "hidden":
                specs[name] = (section, entry, {})
                continue
            if not isinstance(entry, (tuple, list)):
                entry = (entry,)
            input_type = entry[0]
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            specs[name] = (section, input_type, options)
    return specs


def types_match(received: str, expected: str) -> bool:
    """ComfyUI's rule: string equality, '*' matches anything, comma-separated unions."""
    if received == "*" or expected == "*":
        return True
    received_set, expected_set = set(received.split(",")), set(expected.split(","))
    return bool(received_set & expected_set)


def _check_literal(node_id, class_type, name, input_type, options, value) -> Problem | None:
    def problem(kind, message):
        return Problem(node_id, class_type, kind, message, name)

    if isinstance(input_type, (list, tuple)):  # combo
        if value not in input_type:
            shown = ", ".join(map(repr, list(input_type)[:8])) + (" ..." if len(input_type) > 8 else "")
            return problem("value_not_in_list", f"{value!r} is not one of [{shown}]")
        return None
    if input_type not in WIDGET_TYPES:
        return problem("invalid_input_type", f"needs a link from a node that outputs {input_type}, got the value {value!r}")
    if input_type == "BOOLEAN":
        if not isinstance(value, bool):
            return problem("invalid_input_type", f"expects true/false, got {value!r}")
        return None
    if input_type == "STRING":
        if not isinstance(value, str):
            return problem("invalid_input_type", f"expects a string, got {value!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return problem("invalid_input_type", f"expects a number ({input_type}), got {value!r}")
    if input_type == "INT" and not float(value).is_integer():
        return problem("invalid_input_type", f"expects an integer, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        return problem("invalid_input_type", f"expects a finite number, got {value!r}")
    if "min" in options and value < options["min"]:
        return problem("value_smaller_than_min", f"value {value} is smaller than the minimum {options['min']}")
    if "max" in options and value > options["max"]:
        return problem("value_bigger_than_max", f"value {value} is bigger than the maximum {options['max']}")
    return None


def validate_workflow(workflow: Mapping, classes: Mapping[str, type]) -> list[Problem]:
    """Every problem ComfyUI's validator would report, in node order. Empty list = valid."""
    problems: list[Problem] = []
    if not isinstance(workflow, Mapping) or not workflow:
        return [Problem("-", "-", "no_prompt", "the workflow is empty or not a JSON object of nodes")]
    for node_id, node in workflow.items():
        node_id = str(node_id)
        if not isinstance(node, Mapping) or "class_type" not in node:
            problems.append(Problem(node_id, "?", "invalid_prompt", "node has no class_type"))
            continue
        class_type = node["class_type"]
        cls = classes.get(class_type)
        if cls is None:
            problems.append(Problem(node_id, class_type, "invalid_prompt", f"unknown node type '{class_type}' "
                                    "(is the pack that provides it installed and did it load?)"))
            continue
        inputs = node.get("inputs") or {}
        specs = _input_specs(cls)
        for name, (section, input_type, options) in specs.items():
            if section == "hidden":
                continue
            if name not in inputs:
                if section == "required":
                    problems.append(Problem(node_id, class_type, "required_input_missing",
                                            "required input is missing", name))
                continue
            value = inputs[name]
            if is_link(value):
                src_id, slot = str(value[0]), value[1]
                src = workflow.get(src_id)
                src_cls = classes.get(src.get("class_type")) if isinstance(src, Mapping) else None
                if src is None:
                    problems.append(Problem(node_id, class_type, "bad_linked_input",
                                            f"linked to node '{src_id}', which is not in the workflow", name))
                    continue
                if src_cls is None:
                    continue  # reported on the source node itself
                if not 0 <= slot < len(src_cls.RETURN_TYPES):
                    problems.append(Problem(node_id, class_type, "bad_linked_input",
                                            f"node '{src_id}' ({src['class_type']}) has no output {slot}", name))
                    continue
                received = src_cls.RETURN_TYPES[slot]
                expected = "COMBO" if isinstance(input_type, (list, tuple)) else input_type
                if not types_match(str(received), str(expected)):
                    problems.append(Problem(node_id, class_type, "return_type_mismatch",
                                            f"received_type({received}) mismatch input_type({expected}) "
                                            f"from node '{src_id}' output {slot}", name))
                continue
            validates = getattr(cls, "VALIDATE_INPUTS", None)
            if validates is not None and name in _validate_params(validates):
                continue  # ComfyUI skips its own checks for inputs VALIDATE_INPUTS takes
            found = _check_literal(node_id, class_type, name, input_type, options, value)
            if found:
                problems.append(found)
        problems.extend(_custom_validation(node_id, class_type, cls, inputs))
    if not problems:
        try:
            execution_order(workflow)
        except WorkflowError as exc:
            problems.extend(exc.problems)
    return problems


def _validate_params(fn) -> set[str]:
    import inspect

    return {p for p in inspect.signature(fn).parameters if p not in ("cls", "self")}


def _custom_validation(node_id, class_type, cls, inputs) -> list[Problem]:
    validates = getattr(cls, "VALIDATE_INPUTS", None)
    if validates is None:
        return []
    params = _validate_params(validates)
    kwargs = {k: (None if is_link(v) else v) for k, v in inputs.items() if k in params}
    try:
        verdict = validates(**kwargs)
    except Exception as exc:
        return [Problem(node_id, class_type, "exception_during_validation", f"{type(exc).__name__}: {exc}")]
    if verdict is True:
        return []
    return [Problem(node_id, class_type, "custom_validation_failed", str(verdict))]


# ------------------------------------------------------------------------------------------------------------
# Execution


def execution_order(workflow: Mapping, targets: list[str] | None = None) -> list[str]:
    """Dependency order of the nodes needed for ``targets`` (all nodes when None); a cycle is an error.

    Iterative depth-first search with an explicit stack: a valid chain of thousands of nodes must not hit
    Python's recursion limit."""
    needed: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def parents(node_id: str) -> list[str]:
        return [str(v[0]) for v in (workflow[node_id].get("inputs") or {}).values()
                if is_link(v) and str(v[0]) in workflow]

    for start in (targets if targets is not None else list(workflow)):
        start = str(start)
        if state.get(start) == 2:
            continue
        stack = [(start, iter(parents(start)))]
        path = [start]
        state[start] = 1
        while stack:
            node_id, pending = stack[-1]
            parent = next(pending, None)
            if parent is None:
                stack.pop()
                path.pop()
                state[node_id] = 2
                needed.append(node_id)
                continue
            if state.get(parent) == 2:
                continue
            if state.get(parent) == 1:
                cycle = " -> ".join(path[path.index(parent):] + [parent])
                raise WorkflowError([Problem(parent, workflow[parent].get("class_type", "?"), "dependency_cycle",
                                             f"the workflow has a cycle: {cycle}")])
            state[parent] = 1
            path.append(parent)
            stack.append((parent, iter(parents(parent))))
    return needed


def run_workflow(
    workflow: Mapping,
    classes: Mapping[str, type],
    *,
    targets: list[str] | None = None,
    on_node: Callable[[str, str], None] | None = None,
) -> RunResult:
    """Validate, then execute the nodes needed for ``targets`` (default: every node) in dependency order.

    Args:
        workflow (`dict`): API-format workflow.
        classes (`dict`): node id -> node class (the pack's ``NODE_CLASS_MAPPINGS`` plus any stand-ins).
        targets (`list[str]`, *optional*): node ids (or unique titles) whose outputs are wanted; only they and their
            ancestors are validated and run.
        on_node (`callable`, *optional*): called as ``on_node(node_id, class_type)`` before each node runs.
    """
    import torch

    if targets is not None:  # validate and run only what the targets need, as ComfyUI's partial execution does
        try:
            targets = [find_node(workflow, t) for t in targets]
        except ValueError as exc:
            raise WorkflowError([Problem("-", "-", "bad_target", f"--targets: {exc}")]) from None
        needed = execution_order(workflow, targets)
        workflow = {node_id: workflow[node_id] for node_id in needed}
    from ..nodes.model_check import on_prompt

    on_prompt({"prompt": dict(workflow)})  # as ComfyUI's server does: loaders' checks then list every missing file
    problems = validate_workflow(workflow, classes)
    if problems:
        raise WorkflowError(problems)
    result = RunResult()
    order = execution_order(workflow, targets)
    for node_id in order:
        node = workflow[node_id]
        cls = classes[node["class_type"]]
        kwargs = _gather_inputs(node_id, node, cls, workflow, result)
        if on_node is not None:
            on_node(node_id, node["class_type"])
        instance = cls()
        try:
            with torch.inference_mode():
                out = getattr(instance, cls.FUNCTION)(**kwargs)
        except Exception as exc:
            raise NodeExecutionError(node_id, node["class_type"], exc) from exc
        ui = None
        if isinstance(out, dict):
            ui = out.get("ui")
            out = out.get("result", ())
        result.outputs[node_id] = tuple(out) if out is not None else ()
        if ui:
            result.ui[node_id] = ui
        result.order.append(node_id)
    return result


def _gather_inputs(node_id, node, cls, workflow, result: RunResult) -> dict:
    kwargs = {}
    specs = _input_specs(cls)
    for name, value in (node.get("inputs") or {}).items():
        if name not in specs:
            continue  # ComfyUI ignores inputs the node does not declare (old workflows)
        if is_link(value):
            src_outputs = result.outputs[str(value[0])]
            kwargs[name] = src_outputs[value[1]]
        else:
            kwargs[name] = value
    for name, (section, kind, _) in specs.items():
        if section != "hidden":
            continue
        if kind == "UNIQUE_ID":
            kwargs[name] = node_id
        elif kind == "PROMPT":
            kwargs[name] = dict(workflow)
        elif kind == "EXTRA_PNGINFO":
            kwargs[name] = {}
    return kwargs
