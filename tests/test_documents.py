"""Loading the knowledge base: every *.md under a folder, stripped to plain text."""

from __future__ import annotations

import os

import pytest

import llama_stack_agent_rag_otel as app


def write(path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def test_reads_markdown_recursively_in_a_stable_order(tmp_path):
    write(tmp_path / "b.md", "# Bee\n\nbuzz")
    write(tmp_path / "a" / "deep" / "c.md", "see")
    write(tmp_path / "A.MD", "upper case suffix")
    write(tmp_path / "notes.txt", "not markdown")
    docs = app.load_documents(tmp_path)
    assert [d.document_id for d in docs] == ["A.MD", "b.md", "a/deep/c.md"]


def test_markdown_is_stripped_to_text(tmp_path):
    write(tmp_path / "doc.md", "# Title\n\nSome **bold** and a [link](http://example.com).\n\n- item one\n")
    [doc] = app.load_documents(tmp_path)
    assert "Title" in doc.text and "bold" in doc.text and "item one" in doc.text
    for markup in ("#", "**", "](", "- item"):
        assert markup not in doc.text
    assert doc.size_bytes == len((tmp_path / "doc.md").read_bytes())


def test_non_utf8_and_empty_files_are_skipped_with_a_warning(tmp_path, capsys):
    write(tmp_path / "good.md", "fine")
    write(tmp_path / "latin1.md", "caf\xe9".encode("latin-1"))
    write(tmp_path / "empty.md", "")
    assert [d.document_id for d in app.load_documents(tmp_path)] == ["good.md"]
    err = capsys.readouterr().err
    assert "latin1.md: not UTF-8" in err
    assert "empty.md: no text" in err


@pytest.mark.timeout(20)
def test_a_symlink_loop_does_not_hang_the_walk(tmp_path):
    write(tmp_path / "docs" / "one.md", "one")
    os.symlink(tmp_path / "docs", tmp_path / "docs" / "loop")
    assert [d.document_id for d in app.load_documents(tmp_path / "docs")] == ["one.md"]


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(app.UserError, match="does not exist") as caught:
        app.load_documents(tmp_path / "nope")
    assert caught.value.exit_code == app.EXIT_USAGE


def test_folder_without_markdown_is_a_usage_error(tmp_path):
    write(tmp_path / "readme.txt", "text")
    with pytest.raises(app.UserError, match="no .md files"):
        app.load_documents(tmp_path)


def test_folder_of_only_unusable_files_is_a_usage_error(tmp_path):
    write(tmp_path / "empty.md", "   \n")
    with pytest.raises(app.UserError, match="no usable .md file"):
        app.load_documents(tmp_path)


def test_sample_docs_answer_the_seed_question():
    docs = app.load_documents(app.DEFAULT_DOCS_DIR)
    assert 6 <= len(docs) <= 12
    text = " ".join(d.text for d in docs).lower()
    assert "do not use npm to start a node.js application in production" in text
