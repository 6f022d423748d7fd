"""kobe_mlops.docs_tables without a pipeline run: markers, tables and the refresh command."""

from __future__ import annotations

import pytest

from conftest import copy_empty_store
from kobe_mlops import docs_tables

DOCUMENT = "Intro.\n\n<!-- table:sizes -->\n\n| old |\n\n<!-- /table:sizes -->\n\nAfter, 0.1234.\n"


def test_render_replaces_exactly_what_lies_between_the_markers():
    text = docs_tables.render(DOCUMENT, {"sizes": "| new |"})
    assert text == DOCUMENT.replace("| old |", "| new |")
    assert docs_tables.render(text, {"sizes": "| new |"}) == text
    assert docs_tables.render(DOCUMENT, {}) == DOCUMENT


@pytest.mark.parametrize("text", [DOCUMENT.replace("<!-- /table:sizes -->", ""), DOCUMENT + DOCUMENT])
def test_a_missing_or_repeated_marker_is_named(text):
    with pytest.raises(ValueError, match="<!-- table:sizes -->"):
        docs_tables.render(text, {"sizes": "| new |"})


def test_tables_right_align_number_columns_and_print_figures_at_their_precision():
    table = docs_tables.table("feature|rule|share", [["`lat`", "a rule", "96.7 %"], ["`lon`", "", "-0.5"]])
    assert table.splitlines()[1] == "|---|---|---:|"
    shown = [docs_tables.shown(*pair) for pair in [("log_loss_vs_null", -0.00001), ("log_loss", 0.67252)]]
    shown += [docs_tables.shown(*pair) for pair in [("rows_filtered", 20285.0), ("psi_lat", 2.45096)]]
    shown += [docs_tables.shown(*pair) for pair in [("dev_share_2PT", 0.9673), ("psi_lat_alert", 1.0)]]
    assert shown == ["0.0000", "0.6725", "20,285", "2.451", "96.7 %", "yes"]
    assert [docs_tables.trimmed(2.5), docs_tables.short(22.0), docs_tables.short(5.1, 2)] == ["2.5", "22", "5.10"]


def test_check_names_stale_tables_and_a_refresh_writes_them(tmp_path, monkeypatch, capsys):
    def unavailable(workspace):
        raise docs_tables.Unavailable("no replay run")

    (tmp_path / "a.md").write_text(DOCUMENT + "<!-- table:later -->\n<!-- /table:later -->\n")
    monkeypatch.setattr(docs_tables, "DOCS", tmp_path)
    monkeypatch.setattr(docs_tables, "TABLES", {"sizes": lambda w: "| new |", "later": unavailable})
    monkeypatch.setattr(docs_tables, "Workspace", lambda root: None)
    assert docs_tables.main(["--workspace", str(tmp_path), "--check"]) == 1
    assert "stale: a.md: sizes" in capsys.readouterr().out
    assert docs_tables.main(["--workspace", str(tmp_path)]) == 0
    assert "| new |" in (tmp_path / "a.md").read_text()
    assert docs_tables.main(["--workspace", str(tmp_path), "--check"]) == 0
    assert "later left as it is (no replay run)" in capsys.readouterr().out


def test_a_workspace_without_a_pipeline_run_is_refused(tmp_path, empty_mlflow_db, capsys):
    copy_empty_store(empty_mlflow_db, tmp_path / "mlflow.db")
    assert docs_tables.main(["--workspace", str(tmp_path), "--check"]) == 1
    assert "holds no finished AquisicaoDados run" in capsys.readouterr().err
