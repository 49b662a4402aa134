"""Strict decoding and line splitting of input files (offline.inputs.text)."""

from __future__ import annotations

import pytest

from llm4sbr_adapter.offline.inputs.text import InputFormatError, read_lines, resolve_encoding, text_lines


def test_lines_split_only_at_line_ends_not_at_x85():
    # "å" in UTF-8 is c3 a5; "Ã…" (latin-1 reading of c3 85) holds \x85, which str.splitlines() splits at.
    text = "1::M\xc3\x85l (1998)::Drama\r\n2::Other\u2028title::x\r3::Last"
    assert text.splitlines() != text_lines(text)
    assert text_lines(text) == ["1::M\xc3\x85l (1998)::Drama", "2::Other\u2028title::x", "3::Last"]
    assert text_lines("a\nb\n") == ["a", "b"]


def test_decoding_error_names_file_line_byte_offset_and_column(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes(b"movieId,title\n1,Caf\xe9 (1999)\n")
    with pytest.raises(InputFormatError) as err:
        read_lines(path, "utf-8", "pass --encoding latin-1")
    message = str(err.value)
    assert "\n" not in message
    assert message == (f"{path}: line 2: not UTF-8 (byte 0xe9 at byte offset 19, column 6); pass --encoding latin-1")


def test_latin1_release_read_as_latin1_unless_the_copy_is_utf8(tmp_path):
    latin = tmp_path / "latin.dat"
    latin.write_bytes("1::Léon (1994)::Drama\n".encode("latin-1"))
    utf8 = tmp_path / "utf8.dat"
    utf8.write_bytes("1::Léon (1994)::Drama\n2::Mål (1998)::Drama\n".encode())
    ascii_ = tmp_path / "ascii.dat"
    ascii_.write_bytes(b"1::Heat (1995)::Action\n")
    assert resolve_encoding(latin, None, "latin-1") == "latin-1"
    assert resolve_encoding(utf8, None, "latin-1") == "utf-8"
    assert resolve_encoding(ascii_, None, "latin-1") == "latin-1"
    assert resolve_encoding(utf8, "cp1252", "latin-1") == "cp1252"
    assert read_lines(utf8, resolve_encoding(utf8, None, "latin-1"), "")[1] == "2::Mål (1998)::Drama"
