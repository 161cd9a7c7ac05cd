"""The package layout is the architecture: every unit imports only the layers below it."""

from tests import layout


def test_every_unit_of_the_package_has_a_layer():
    assert sorted(layout.unit_imports()) == sorted(layout.UNITS)


def test_no_unit_imports_upward_or_in_a_circle():
    graph = layout.unit_imports()
    report = "\n".join(
        f"{unit} -> {', '.join(sorted(graph[unit])) or '-'}" for unit in layout.UNITS
    )
    print(report)
    upward = {
        unit: sorted(t for t in targets if layout.UNITS.index(t) > layout.UNITS.index(unit))
        for unit, targets in graph.items()
    }
    assert not {unit: up for unit, up in upward.items() if up}, report
    assert all("kvid" not in targets for targets in graph.values()), report
