"""Loading the knowledge base: every *.md under a folder, stripped to plain text."""

from __future__ import annotations

import os

import pytest

from llama_stack_otel.config import DEFAULT_DOCS_DIR
from llama_stack_otel.documents import load_documents
from llama_stack_otel.errors import EXIT_USAGE, UserError
from tests.support.script import run_script


def write(path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def test_reads_markdown_recursively_in_a_stable_order(tmp_path):
    write(tmp_path / "b.md", "# Bee\n\nbuzz")
    write(tmp_path / "a" / "deep" / "c.md", "see")
    write(tmp_path / "A.MD", "upper case suffix")
    write(tmp_path / "notes.txt", "not markdown")
    docs = load_documents(tmp_path)
    assert [d.document_id for d in docs] == ["A.MD", "b.md", "a/deep/c.md"]


def test_markdown_is_stripped_to_text(tmp_path):
    write(tmp_path / "doc.md", "# Title\n\nSome **bold** and a [link](http://example.com).\n\n- item one\n")
    [doc] = load_documents(tmp_path)
    assert "Title" in doc.text and "bold" in doc.text and "item one" in doc.text
    for markup in ("#", "**", "](", "- item"):
        assert markup not in doc.text
    assert doc.size_bytes == len((tmp_path / "doc.md").read_bytes())


def test_html_in_markdown_gives_its_text_entities_decoded_and_no_script(tmp_path):
    write(tmp_path / "doc.md", "Fish &amp; chips, 5 &lt; 6\n\n<div>\n<b>raw</b> block\n</div>\n\n"
                               "<script>alert('x')</script>\n\n`code &` stays\n")
    [doc] = load_documents(tmp_path)
    assert "Fish & chips, 5 < 6" in doc.text and "raw block" in doc.text and "code & stays" in doc.text
    assert "alert" not in doc.text and "<" not in doc.text.replace("5 < 6", "")


def test_non_utf8_and_empty_files_are_skipped_with_a_warning(tmp_path, capsys):
    write(tmp_path / "good.md", "fine")
    write(tmp_path / "latin1.md", "caf\xe9".encode("latin-1"))
    write(tmp_path / "empty.md", "")
    assert [d.document_id for d in load_documents(tmp_path)] == ["good.md"]
    err = capsys.readouterr().err
    assert "latin1.md: not UTF-8" in err
    assert "empty.md: no text" in err


def test_files_over_the_size_limit_are_skipped_unread(tmp_path, capsys):
    write(tmp_path / "small.md", "x" * 100)
    write(tmp_path / "big.md", "y" * 101)
    assert [d.document_id for d in load_documents(tmp_path, max_file_size=100)] == ["small.md"]
    assert "big.md: 101 bytes is over the --max-file-size of 100" in capsys.readouterr().err


@pytest.mark.timeout(20)
def test_a_symlink_loop_does_not_hang_the_walk(tmp_path, capsys):
    write(tmp_path / "docs" / "one.md", "one")
    os.symlink(tmp_path / "docs", tmp_path / "docs" / "loop")
    # Links named like markdown that lead nowhere readable: to themselves, to nothing.
    os.symlink(tmp_path / "docs" / "self.md", tmp_path / "docs" / "self.md")
    os.symlink(tmp_path / "gone.md", tmp_path / "docs" / "dangling.md")
    os.symlink(tmp_path / "docs", tmp_path / "docs" / "folder.md")  # a folder: not walked into
    assert [d.document_id for d in load_documents(tmp_path / "docs")] == ["one.md"]
    err = capsys.readouterr().err
    assert "self.md: cannot read it (Too many levels of symbolic links)" in err
    assert "dangling.md: cannot read it (No such file or directory)" in err
    assert "folder.md" not in err


def test_bad_files_are_skipped_and_the_run_goes_on(llama_stack, otlp_receiver, tmp_path):
    """The script against the real server: each unusable file named in a warning, the rest ingested."""
    write(tmp_path / "good.md", "# Good\n\nStart node directly.")
    write(tmp_path / "latin1.md", "caf\xe9".encode("latin-1"))
    write(tmp_path / "empty.md", "")
    write(tmp_path / "big.md", "# Big\n\n" + "z " * 1024)
    os.symlink(tmp_path / "self.md", tmp_path / "self.md")
    os.symlink(tmp_path, tmp_path / "loop")
    run = run_script("--no-questions", "--llama-stack-url", llama_stack.url, "--docs", str(tmp_path),
                     "--otlp-endpoint", otlp_receiver.traces_url, "--max-file-size", "1K")
    assert run.returncode == 0, run.stderr
    assert "Ingested 1 documents" in run.stdout
    warnings = sorted(run.stderr.strip().splitlines())
    assert [w.split(": ")[1].removeprefix("skipping ") for w in warnings] == [
        str(tmp_path / name) for name in ("big.md", "empty.md", "latin1.md", "self.md")], warnings
    assert all(w.startswith("warning: skipping ") for w in warnings)


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UserError, match="does not exist") as caught:
        load_documents(tmp_path / "nope")
    assert caught.value.exit_code == EXIT_USAGE


def test_folder_without_markdown_is_a_usage_error(tmp_path):
    write(tmp_path / "readme.txt", "text")
    with pytest.raises(UserError, match=r"no \.md files"):
        load_documents(tmp_path)


def test_folder_of_only_unusable_files_is_a_usage_error(tmp_path):
    write(tmp_path / "empty.md", "   \n")
    with pytest.raises(UserError, match=r"no usable \.md file"):
        load_documents(tmp_path)


def test_sample_docs_answer_the_seed_question():
    docs = load_documents(DEFAULT_DOCS_DIR)
    assert 6 <= len(docs) <= 12
    text = " ".join(d.text for d in docs).lower()
    assert "do not use npm to start a node.js application in production" in text
