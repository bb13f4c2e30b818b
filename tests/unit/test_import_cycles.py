"""The service modules import each other without cycles (style.md: arrows point down only)."""

from __future__ import annotations

import grimp


def _cycles(package: str, root: str = "flexmail") -> list[list[str]]:
    graph = grimp.build_graph(root)
    modules = {m for m in graph.modules if m.startswith(package + ".")}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    found = []

    def walk(start, node, path):
        for nxt in edges[node]:
            if nxt == start:
                found.append(path)
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for module in sorted(modules):
        walk(module, module, [module])
    return found


def test_services_have_no_import_cycle():
    """No service module reaches itself through other service modules (imports inside functions count)."""
    assert _cycles("flexmail.services") == []


def test_the_check_sees_a_cycle(tmp_path, monkeypatch):
    """The cycle finder is not blind: a two-module package that imports itself in a circle is reported."""
    pkg = tmp_path / "flexmail_cycle_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from flexmail_cycle_probe import b\n")
    (pkg / "b.py").write_text("def f():\n    from flexmail_cycle_probe import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = "flexmail_cycle_probe"
    assert _cycles(probe, root=probe) == [[f"{probe}.a", f"{probe}.b"]]
