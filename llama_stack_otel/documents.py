"""The documents a run ingests: every markdown file under a folder, stripped to plain text."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from llama_stack_otel.config import DEFAULT_MAX_FILE_SIZE
from llama_stack_otel.errors import UserError


@dataclass(frozen=True)
class Document:
    document_id: str
    text: str
    size_bytes: int


class _TextOfHtml(HTMLParser):
    """The text of an HTML fragment: every text node in order, entities decoded, script and
    style content left out."""

    NOT_TEXT = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.inside_not_text = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.NOT_TEXT:
            self.inside_not_text += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.NOT_TEXT and self.inside_not_text:
            self.inside_not_text -= 1

    def handle_data(self, data: str) -> None:
        if not self.inside_not_text:
            self.parts.append(data)


def strip_markdown(markdown_text: str) -> str:
    """Markdown as plain text: rendered to HTML by the Markdown package, then the HTML's text.
    The standard library's HTML parser does the second step: BeautifulSoup, which the
    strip-markdown package uses for it, took 0.15 s to import, on the way to the first request."""
    import markdown

    parser = _TextOfHtml()
    parser.feed(markdown.markdown(markdown_text))
    parser.close()
    return "".join(parser.parts)


def find_markdown_files(docs_dir: Path) -> list[Path]:
    # os.walk without followlinks cannot loop on a symlinked directory cycle.
    found: list[Path] = []
    for folder, subdirs, files in os.walk(docs_dir):
        subdirs.sort()
        found.extend(Path(folder) / name for name in sorted(files) if name.lower().endswith(".md"))
    return found


def load_documents(docs_dir: Path, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> list[Document]:
    """Read every *.md under docs_dir (recursively) and strip it to plain text. A file that
    cannot be used (unreadable, not UTF-8, empty, over max_file_size bytes) is skipped with a
    warning naming it."""
    if not docs_dir.is_dir():
        raise UserError(f"docs folder {docs_dir} does not exist — pass --docs DIR or set RAG_DOCS_DIR")
    paths = find_markdown_files(docs_dir)
    if not paths:
        raise UserError(f"docs folder {docs_dir} holds no .md files — point --docs at a folder of markdown")
    documents = []
    for path in paths:
        try:
            # stat first: a huge file is never read. A symlink loop, a dangling link or a link
            # to a folder fails here (OSError) like an unreadable file.
            size = path.stat().st_size
            if size > max_file_size:
                print(f"warning: skipping {path}: {size} bytes is over the --max-file-size of {max_file_size}",
                      file=sys.stderr)
                continue
            raw = path.read_bytes()
        except OSError as exc:
            print(f"warning: skipping {path}: cannot read it ({exc.strerror or type(exc).__name__})", file=sys.stderr)
            continue
        try:
            markdown = raw.decode("utf-8")
        except UnicodeDecodeError:
            print(f"warning: skipping {path}: not UTF-8 text", file=sys.stderr)
            continue
        text = strip_markdown(markdown).strip()
        if not text:
            print(f"warning: skipping {path}: no text in it", file=sys.stderr)
            continue
        document_id = path.relative_to(docs_dir).as_posix()
        documents.append(Document(document_id=document_id, text=text, size_bytes=len(raw)))
    if not documents:
        raise UserError(f"no usable .md file in {docs_dir} — each was skipped (see the warnings above)")
    return documents
