"""The stage graph: which stage produces what, refusal of cycles and shared outputs, and dependency order."""

from __future__ import annotations

from vtool.errors import VtoolError
from vtool.pipeline.stages import PipelineError, Stage


def overlaps(a: str, b: str) -> bool:
    """Tell whether two repo paths are the same or one is inside the other."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def producer_of(stages: dict[str, Stage], path: str) -> str | None:
    """Name the stage whose output or metric is path, contains it or lies inside it."""
    for stage in stages.values():
        if any(overlaps(path, out) for out in stage.produced):
            return stage.name
    return None


def upstream(stages: dict[str, Stage]) -> dict[str, list[str]]:
    """Map each stage to the stages producing its deps (its direct parents), sorted."""
    parents: dict[str, list[str]] = {}
    for stage in stages.values():
        found = {p for dep in stage.deps for p in [producer_of(stages, dep)] if p is not None}
        parents[stage.name] = sorted(found)
    return parents


def check(stages: dict[str, Stage], error: type[VtoolError] = PipelineError) -> None:
    """Refuse two stages writing one output (or nested outputs) and any cycle, naming the stages."""
    seen: list[tuple[str, str]] = []
    for stage in stages.values():
        for out in stage.produced:
            for other, path in seen:
                if overlaps(out, path):
                    raise error(f"stages {other} and {stage.name} both write {min(out, path, key=len)}"
                                + ("" if out == path else f" ({path} and {out} overlap)"),
                                "each output must be written by exactly one stage")
            seen.append((stage.name, out))
        for dep in stage.deps:
            if any(overlaps(dep, out) for out in stage.produced):
                raise error(f"stage {stage.name} depends on its own output {dep}", "a stage cannot read what it writes")
    order(stages, error)


def order(stages: dict[str, Stage], error: type[VtoolError] = PipelineError) -> list[str]:
    """Return stage names parents first (ties in name order); a cycle is refused with its path."""
    parents = upstream(stages)
    done: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = placed

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise error(f"the stages form a cycle: {' -> '.join(cycle)}", "remove one of these dependencies")
        state[name] = 1
        for parent in parents[name]:
            visit(parent, [*path, name])
        state[name] = 2
        done.append(name)

    for name in sorted(stages):
        visit(name, [])
    return done


def ancestors(stages: dict[str, Stage], names: list[str]) -> set[str]:
    """Return the named stages and every stage they need, transitively."""
    parents = upstream(stages)
    return _reach(parents, names)


def descendants(stages: dict[str, Stage], names: list[str]) -> set[str]:
    """Return the named stages and every stage that uses their outputs, transitively."""
    children: dict[str, list[str]] = {name: [] for name in stages}
    for child, parents in upstream(stages).items():
        for parent in parents:
            children[parent].append(child)
    return _reach(children, names)


def _reach(edges: dict[str, list[str]], names: list[str]) -> set[str]:
    """Return names and everything reachable from them along edges (one walk for both directions)."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(edges[name])
    return found
