"""Property tests: no string can become an entry path that escapes the artifact's root."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from artiflow.errors import InvalidPath
from artiflow.naming import entry_path

ROOT = "/download/root"

#: path segments chosen to be dangerous, mixed with ordinary ones
_SEGMENTS = st.one_of(
    st.sampled_from(["", ".", "..", "...", "a", "b.txt", "C:", "c:", "~", " ", "..."]),
    st.sampled_from(["\\", "..\\..", "a\\b", "\x00", "\n", "\x7f", "é", "ä/..", "%2e%2e"]),
    st.text(min_size=1, max_size=8),
)
_JOINED = st.tuples(
    st.sampled_from(["", "/", "//", "./", "../"]),
    st.lists(_SEGMENTS, min_size=1, max_size=6),
    st.sampled_from(["", "/", "//"]),
).map(lambda t: t[0] + "/".join(t[1]) + t[2])


def _stays_under_root(path: str) -> bool:
    joined = posixpath.normpath(posixpath.join(ROOT, path))
    return joined.startswith(ROOT + "/")


def _check(raw: str) -> None:
    try:
        path = entry_path(raw)
    except InvalidPath:
        return
    assert _stays_under_root(path), (raw, path)
    assert path and not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert all(seg not in ("", ".", "..") for seg in path.split("/"))
    assert entry_path(path) == path  # normalising twice changes nothing
    # The normalised path is what a download joins: it names a file strictly below the root.
    assert posixpath.normpath(posixpath.join(ROOT, path)) == f"{ROOT}/{path}"


@settings(max_examples=2000)
@given(st.text())
@example("../etc/passwd")
@example("a/../../b")
@example("/abs")
@example("C:/windows")
@example("a\\..\\..\\b")
@example("a/./b")
@example("a//b")
@example(".")
@example("images/")
def test_no_text_escapes_the_root(raw: str) -> None:
    _check(raw)


@settings(max_examples=3000)
@given(_JOINED)
def test_no_joined_segments_escape_the_root(raw: str) -> None:
    _check(raw)


@given(st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True), min_size=1, max_size=5))
def test_ordinary_paths_are_kept(segments: list[str]) -> None:
    raw = "/".join(segments)
    if any(seg in (".", "..") for seg in segments):
        with pytest.raises(InvalidPath):
            entry_path(raw)
    else:
        assert entry_path(raw) == raw
        assert entry_path(raw + "/") == raw


@pytest.mark.parametrize("bad", [None, 1, b"bytes", ["a"]])
def test_non_strings_are_refused(bad: object) -> None:
    with pytest.raises(InvalidPath):
        entry_path(bad)


@pytest.mark.parametrize(
    "bad", ["", "/", "..", "a/..", "../a", "a/../b", "a\\b", "a\x00b", "C:/y", "x:y", "a//b"]
)
def test_known_bad_paths(bad: str) -> None:
    with pytest.raises(InvalidPath):
        entry_path(bad)
