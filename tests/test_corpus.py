"""Specification of charlm.text.corpus: reading, decoding, normalising and splitting a corpus."""

import gzip
import importlib.util
import io
import marshal
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import error
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from charlm.errors import CharLMError
from charlm.text import corpus
from charlm.text.corpus import read_chunks, read_corpus, rereadable, source_signature, split_corpus
from charlm.text.vocab import Vocab

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
WIDE = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]
LATIN = "\t\n\r" + "".join(map(chr, range(0x20, 0x7F))) + "".join(map(chr, range(0xA0, 0x100)))


def pyc(source: str = "x = 1\n") -> bytes:
    """A compiled Python module, as __pycache__ holds: magic, flags, mtime, size, code."""
    return (
        importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(compile(source, "mod.py", "exec"))
    )


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def make_zip(path: Path, members: dict) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def normalised(text: str) -> str:
    """What read_corpus must return for a file holding ``text`` (newlines keep)."""
    return text.replace("\r\n", "\n").removeprefix("\ufeff")


# Arbitrary Unicode (every category but lone surrogates) plus the troublemakers, explicitly.
# No NUL: a NUL in the head of a file makes it binary, as in git (specified below).
troublemakers = st.sampled_from(
    ["\r\n", "\r", "\n", "\ufeff", "😀", "e\u0301", "中文", "ΑΣ ", "\U0010fffd"]
)
unicode_text = st.lists(
    st.one_of(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), troublemakers),
    max_size=40,
).map("".join)
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- bundled corpora


@pytest.mark.parametrize(
    "name, n_chars, n_distinct",
    [
        ("tinyshakespeare.txt", 1_115_394, 65),
        ("tang_poems.txt", 775_441, 6_085),
        ("timemachine.txt", 178_979, 70),
    ],
)
def test_bundled_corpora_have_the_sizes_documented_in_sources_md(name, n_chars, n_distinct):
    text = read_corpus([str(CORPORA / name)])
    assert (len(text), len(set(text))) == (n_chars, n_distinct)


def test_sources_md_keeps_the_attribution_and_licence_text():
    sources = (CORPORA / "SOURCES.md").read_text(encoding="utf-8")
    assert (
        "karpathy/char-rnn" in sources
        and "chinese-poetry" in sources
        and "licen" in sources.lower()
    )


# ----------------------------------------------------------------------------- round trips (properties)


@fast
@given(text=unicode_text, bom=st.booleans())
def test_any_unicode_file_round_trips_through_read_vocab_encode_decode(text, bom):
    expected = normalised(("\ufeff" if bom else "") + text)
    assume(expected)
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d, "t.txt"), (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
        got = read_corpus([path])
    vocab = Vocab.from_text(got)
    assert got == expected
    assert vocab.decode(vocab.encode(got)) == expected


PACKED = {  # a file in a container read as its text: (folder, bytes) -> the path to read
    "gz": lambda d, data: write(Path(d, "t.txt.gz"), gzip.compress(data)),
    "zip-member": lambda d, data: make_zip(Path(d, "t.zip"), {"t.txt": data}),
}


@pytest.mark.parametrize("kind", list(PACKED))
@fast
@given(text=unicode_text)
def test_any_unicode_text_reads_the_same_from_a_gz_or_a_zip_member(kind, text):
    expected = normalised(text)
    assume(expected)
    with tempfile.TemporaryDirectory() as d:
        path = PACKED[kind](d, text.encode("utf-8"))
        assert read_corpus([path]) == expected


@fast
@given(text=unicode_text, data=st.data())
def test_max_chars_gives_exactly_the_prefix_of_the_normalised_text(text, data):
    expected = normalised(text)
    assume(expected)
    n = data.draw(st.integers(1, len(expected) + 3))
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d, "t.txt"), text.encode("utf-8"))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(corpus, "CHUNK_BYTES", data.draw(st.sampled_from([1, 7, 1 << 20])))
            assert read_corpus([path], max_chars=n) == expected[:n]


@fast
@given(text=unicode_text, newlines=st.sampled_from(["keep", "space"]), lowercase=st.booleans())
def test_tiny_read_chunks_give_the_same_text_as_one_big_chunk(text, newlines, lowercase):
    assume(normalised(text))
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d, "t.txt"), text.encode("utf-8"))
        whole = read_corpus([path], newlines=newlines, lowercase=lowercase)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(corpus, "CHUNK_BYTES", 7)
            assert read_corpus([path], newlines=newlines, lowercase=lowercase) == whole


@fast
@given(prefix=unicode_text, suffix=unicode_text, chunk=st.sampled_from([1, 2, 3, 7]))
def test_tiny_read_chunks_report_the_same_byte_offset_of_an_invalid_byte(prefix, suffix, chunk):
    data = prefix.encode("utf-8") + b"\xff" + suffix.encode("utf-8")
    offset = len(prefix.encode("utf-8"))
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d, "t.txt"), data)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(corpus, "CHUNK_BYTES", chunk)
            assert f"at byte {offset};" in error(read_corpus, [path])
        assert f"at byte {offset};" in error(read_corpus, [path])


@fast
@given(text=unicode_text)
def test_newlines_space_and_lowercase_match_str_replace_and_str_lower(text):
    expected = normalised(text).replace("\n", " ").lower()
    assume(expected)
    assert (
        read_corpus(["-"], stdin=io.BytesIO(text.encode("utf-8")), newlines="space", lowercase=True)
        == expected
    )


# ----------------------------------------------------------------------------- normalisation


def test_crlf_becomes_lf_even_when_split_across_read_chunks(tmp_path, monkeypatch):
    path = write(tmp_path / "t.txt", b"abc\r\ndef\r\n")
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 4)  # the first chunk ends with "\r"
    assert read_corpus([path]) == "abc\ndef\n"


def test_a_lone_cr_stays_as_it_is(tmp_path):
    assert read_corpus([write(tmp_path / "t.txt", b"a\rb\r")]) == "a\rb\r"


def test_a_leading_bom_is_dropped_from_each_file(tmp_path):
    a = write(tmp_path / "a.txt", "\ufeffone\n".encode())
    b = write(tmp_path / "b.txt", "\ufefftwo\ufeff".encode())
    assert read_corpus([a, b]) == "one\ntwo\ufeff"


def test_newlines_space_turns_each_newline_into_a_space(tmp_path):
    path = write(tmp_path / "t.txt", b"The Time\r\nMachine\n\nby Wells")
    assert read_corpus([path], newlines="space") == "The Time Machine  by Wells"


def test_lowercase_lowercases_the_text(tmp_path):
    assert read_corpus(
        [write(tmp_path / "t.txt", "ROMEO: Ça VA, ΟΔΥΣΣΕΥΣ".encode())], lowercase=True
    ) == ("romeo: ça va, οδυσσευς")


def test_a_nul_byte_after_the_first_sniff_bytes_is_a_character(tmp_path):
    head = b"x" * corpus.SNIFF_BYTES
    assert read_corpus([write(tmp_path / "t.txt", head + b"a\x00b")]) == head.decode() + "a\x00b"


def test_chinese_text_is_read_one_code_point_per_character(tmp_path):
    poem = "床前明月光，\n疑是地上霜。\n"
    text = read_corpus([write(tmp_path / "poem.txt", poem.encode("utf-8"))])
    assert text == poem and len(text) == 14


def test_other_encodings_are_decoded_with_the_encoding_option(tmp_path):
    poem = "床前明月光，疑是地上霜。"
    assert read_corpus([write(tmp_path / "gbk.txt", poem.encode("gbk"))], encoding="gbk") == poem
    assert (
        read_corpus([write(tmp_path / "l1.txt", "café".encode("latin-1"))], encoding="latin-1")
        == "café"
    )


def test_errors_replace_substitutes_invalid_bytes(tmp_path):
    assert (
        read_corpus([write(tmp_path / "t.txt", b"abc\xffdef")], errors="replace") == "abc\ufffddef"
    )


def test_errors_ignore_drops_invalid_bytes(tmp_path):
    assert read_corpus([write(tmp_path / "t.txt", b"abc\xffdef")], errors="ignore") == "abcdef"


# ----------------------------------------------------------------------------- joining inputs


def test_several_paths_are_joined_in_order_with_one_newline_where_missing(tmp_path):
    a = write(tmp_path / "a.txt", b"one")
    b = write(tmp_path / "b.txt", b"two\n")
    c = write(tmp_path / "c.txt", b"three")
    assert read_corpus([c, a, b, c]) == "three\none\ntwo\nthree"


def test_empty_files_add_no_separator(tmp_path):
    a = write(tmp_path / "a.txt", b"one")
    e = write(tmp_path / "e.txt", b"")
    assert read_corpus([a, e, e, a]) == "one\none"


def test_a_file_ending_in_cr_followed_by_another_file_gets_one_newline(tmp_path):
    a = write(tmp_path / "a.txt", b"one\r")
    b = write(tmp_path / "b.txt", b"two")
    assert read_corpus([a, b]) == "one\ntwo"


def test_a_folder_gives_its_text_files_recursively_in_sorted_path_order(tmp_path):
    write(tmp_path / "b" / "2.txt", b"b2")
    write(tmp_path / "b" / "1.txt", b"b1\n")
    write(tmp_path / "a.txt", b"a\n")
    write(tmp_path / "c" / "d" / "e.md", b"cde")
    assert read_corpus([str(tmp_path)]) == "a\nb1\nb2\ncde"


def test_a_folder_skips_hidden_files_and_folders(tmp_path):
    write(tmp_path / "a.txt", b"visible")
    write(tmp_path / ".hidden.txt", b"hidden")
    write(tmp_path / ".git" / "HEAD", b"ref: refs/heads/main")
    write(tmp_path / "sub" / ".DS_Store", b"junk")
    assert read_corpus([str(tmp_path)]) == "visible"


def test_a_zip_gives_its_text_members_in_sorted_name_order(tmp_path):
    path = make_zip(
        tmp_path / "c.zip",
        {
            "b.txt": b"b",
            "a/x.txt": b"ax\n",
            "__MACOSX/._a.txt": b"\x00\x05\x16\x07junk",
            "img.png": PNG,
            "a.txt": b"a",
        },
    )
    assert read_corpus([path]) == "a\nax\nb"


def test_member_reads_only_that_member_of_a_zip(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"a.txt": b"a", "poems/tang.txt": "唐诗".encode()})
    assert read_corpus([path], member="poems/tang.txt") == "唐诗"


def test_a_gz_is_decompressed(tmp_path):
    assert read_corpus([write(tmp_path / "t.txt.gz", gzip.compress(b"hello\r\n"))]) == "hello\n"


def test_dash_reads_bytes_from_stdin(tmp_path):
    a = write(tmp_path / "a.txt", b"file")
    assert (
        read_corpus([a, "-"], stdin=io.BytesIO("from stdin 😀\r\n".encode()))
        == "file\nfrom stdin 😀\n"
    )


def test_dash_reads_the_bytes_under_a_text_stdin():
    assert read_corpus(["-"], stdin=io.TextIOWrapper(io.BytesIO("é\r\n".encode()))) == "é\n"


def test_dash_defaults_to_sys_stdin_buffer(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"piped")))
    assert read_corpus(["-"]) == "piped"


def test_read_corpus_never_writes_to_disk(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"a.txt": b"a", "d/b.txt": b"b"})
    gz = write(tmp_path / "t.gz", gzip.compress(b"x"))
    write(tmp_path / "notes.txt", b"notes")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    read_corpus([path, gz, str(tmp_path)])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# ----------------------------------------------------------------------------- streaming and bomb guard


@pytest.fixture
def gzip_bomb(tmp_path):
    """~50 MB of "0" characters in a ~50 KB gzip (50 identical gzip members of 1 MB each)."""
    member = gzip.compress(b"0" * (1 << 20), compresslevel=9)
    path = write(tmp_path / "bomb.txt.gz", member * 50)
    assert os.path.getsize(path) < 100_000
    return path


def test_max_chars_stops_decompressing_a_gzip_bomb_early(gzip_bomb):
    # A 2 MiB decompression budget is enough only if reading stops right after 1000 chars.
    assert read_corpus([gzip_bomb], max_chars=1000, max_input_bytes=2 << 20) == "0" * 1000


def test_a_gzip_bomb_beyond_max_input_bytes_is_an_error(gzip_bomb):
    message = error(read_corpus, [gzip_bomb], max_input_bytes=3 << 20)
    assert gzip_bomb in message and "3,145,728" in message and "--max-input-bytes" in message


def test_a_zip_member_beyond_max_input_bytes_is_an_error(tmp_path):
    path = make_zip(tmp_path / "bomb.zip", {"zeros.txt": b"0" * (4 << 20)})
    message = error(read_corpus, [path], max_input_bytes=1 << 20)
    assert f"{path}:zeros.txt" in message and "--max-input-bytes" in message


def test_max_input_bytes_does_not_limit_plain_files(tmp_path):
    assert read_corpus([write(tmp_path / "t.txt", b"x" * 5000)], max_input_bytes=100) == "x" * 5000


def test_max_chars_does_not_open_the_paths_after_the_limit(tmp_path):
    a = write(tmp_path / "a.txt", b"enough text")
    b = write(tmp_path / "b.png", PNG)  # would be an error if it were read
    assert read_corpus([a, b], max_chars=5) == "enoug"


# ----------------------------------------------------------------------------- real folders: binary files, UTF-16/32


def test_a_folder_skips_binary_files_with_one_warning_that_counts_and_names_them(tmp_path):
    write(tmp_path / "a.txt", b"text")
    write(tmp_path / "b.png", PNG)
    write(tmp_path / "c.so", b"\x7fELF\x02\x01\x01" + bytes(100))
    write(tmp_path / "d" / "e.bin", bytes(range(128, 256)) * 40)
    warnings = []
    assert read_corpus([str(tmp_path)], warn=warnings.append) == "text"
    assert warnings == [
        f"warning: {tmp_path}: skipped 3 binary files (b.png, c.so, {Path('d', 'e.bin')})"
    ]


def test_a_python_package_reads_its_source_and_skips_its_pycache_naming_the_first_few(tmp_path):
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", b"")
    write(pkg / "mod.py", b"x = 1\n")
    for m in ("__init__", "a", "b", "mod"):
        write(pkg / "__pycache__" / f"{m}.cpython-312.pyc", pyc())
    warnings = []
    assert read_corpus([str(pkg)], warn=warnings.append) == "x = 1\n"
    first = ", ".join(
        str(Path("__pycache__", f"{m}.cpython-312.pyc")) for m in ("__init__", "a", "b")
    )
    assert warnings == [f"warning: {pkg}: skipped 4 binary files ({first}, ... 4 files in all)"]


def test_a_zip_skips_binary_members_with_one_warning(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"a.txt": b"a", "img.png": PNG})
    warnings = []
    assert read_corpus([path], warn=warnings.append) == "a"
    assert warnings == [f"warning: {path}: skipped 1 binary file (img.png)"]


def test_warnings_are_printed_to_stderr_by_default(tmp_path, capsys):
    write(tmp_path / "a.txt", b"text")
    write(tmp_path / "b.png", PNG)
    read_corpus([str(tmp_path)])
    assert capsys.readouterr().err == f"warning: {tmp_path}: skipped 1 binary file (b.png)\n"


def test_a_text_file_in_a_folder_that_fails_to_decode_stops_with_its_name_and_offset(tmp_path):
    write(tmp_path / "a.png", PNG)
    bad = write(tmp_path / "b.txt", b"caf\xe9 au lait")
    message = error(read_corpus, [str(tmp_path)])
    assert message.startswith(f"{bad}: invalid utf-8 at byte 3;")


def test_an_error_comes_without_the_warnings_of_what_was_read_before_it(tmp_path):
    write(tmp_path / "a.png", PNG)
    write(tmp_path / "b.txt", b"caf\xe9 au lait")
    warnings = []
    error(read_corpus, [str(tmp_path)], warn=warnings.append)
    assert warnings == []


def test_a_nul_byte_in_the_head_makes_a_file_binary_as_in_git(tmp_path):
    path = write(tmp_path / "t.txt", b"a\x00b\x00\x00c")
    assert error(read_corpus, [path]) == (
        f"{path} looks like a binary file (it contains NUL bytes), not text; remove it from the corpus paths"
    )


@pytest.mark.parametrize("codec", WIDE)
def test_a_utf16_or_utf32_byte_order_mark_is_followed_and_told_in_one_warning(tmp_path, codec):
    path = write(tmp_path / "notes.txt", "\ufeffWindows notepad, 中文 😀\r\n".encode(codec))
    warnings = []
    assert read_corpus([path], warn=warnings.append) == "Windows notepad, 中文 😀\n"
    assert warnings == [
        f"warning: {path}: starts with a {codec.upper()} byte-order mark; read as {codec.upper()}"
    ]


def test_a_folder_tells_the_files_it_read_by_their_byte_order_mark_in_one_warning(tmp_path):
    write(tmp_path / "a.txt", "\ufeffone\n".encode("utf-16-le"))
    write(tmp_path / "b.txt", "\ufefftwo\n".encode("utf-16-le"))
    write(tmp_path / "c.txt", b"three\n")
    warnings = []
    assert read_corpus([str(tmp_path)], warn=warnings.append) == "one\ntwo\nthree\n"
    assert warnings == [
        f"warning: {tmp_path}: read 2 files as UTF-16-LE by the byte-order mark (a.txt, b.txt)"
    ]


def test_an_explicit_encoding_is_used_as_given_and_a_bom_is_not_announced(tmp_path):
    path = write(tmp_path / "w.txt", "Windows notepad".encode("utf-16"))
    warnings = []
    assert read_corpus([path], encoding="utf-16", warn=warnings.append) == "Windows notepad"
    assert warnings == []


def test_utf16_with_a_bom_read_as_an_explicit_single_byte_encoding_names_the_right_one(tmp_path):
    path = write(tmp_path / "w.txt", "\ufeffWindows notepad".encode("utf-16-le"))
    assert error(read_corpus, [path], encoding="latin-1") == (
        f"{path} looks like UTF-16-LE text with a byte-order mark, not iso8859-1; pass --encoding utf-16-le"
    )


def test_a_bom_that_the_explicit_encoding_cannot_read_is_named_at_byte_0(tmp_path):
    path = write(tmp_path / "w.txt", "\ufeff中文".encode("utf-16-le"))
    assert error(read_corpus, [path], encoding="ascii") == (
        f"{path}: invalid ascii at byte 0, it starts with a UTF-16-LE byte-order mark; pass --encoding utf-16-le"
    )


@pytest.mark.parametrize("codec", WIDE)
def test_utf16_or_utf32_without_a_bom_is_an_error_naming_the_encoding_that_reads_it(
    tmp_path, codec
):
    path = write(tmp_path / "notes.txt", "Notes from Windows, café\r\n".encode(codec) * 20)
    assert error(read_corpus, [path]) == (
        f"{path} looks like {codec.upper()} text without a byte-order mark, not utf-8; pass --encoding {codec}"
    )
    assert read_corpus([path], encoding=codec) == "Notes from Windows, café\n" * 20


@fast
@given(text=st.text(st.sampled_from(LATIN), min_size=1, max_size=40), codec=st.sampled_from(WIDE))
def test_any_latin_text_in_utf16_or_utf32_without_a_bom_is_recognised(text, codec):
    assert f"pass --encoding {codec}" in error(
        read_corpus, ["-"], stdin=io.BytesIO(text.encode(codec))
    )


@fast
@given(
    text=unicode_text,
    codec=st.sampled_from(WIDE),
    bom=st.booleans(),
    asked=st.sampled_from(["utf-16", "utf-32"]),
)
def test_utf16_or_utf32_by_byte_order_mark_reads_its_text_or_says_which_encoding_in_one_line(
    text, codec, bom, asked
):
    """--encoding utf-16/utf-32 takes the byte order from a byte-order mark: with the mark of
    its width the text is read; anything else is refused in one line, never a traceback."""
    assume(bom or not text.startswith("\ufeff"))  # without a mark, U+FEFF first *is* one
    data = (("\ufeff" if bom else "") + text).encode(codec)
    readable = bom and codec.startswith(asked) and normalised(text)
    try:
        read = read_corpus(["-"], encoding=asked, stdin=io.BytesIO(data))
    except CharLMError as e:
        assert "\n" not in str(e) and not readable, e
        if data and not bom and not text.startswith("\ufeff"):  # no byte-order mark at all
            assert "pass --encoding" in str(e) or "binary" in str(e), e
    else:
        assert readable and read == normalised(text)


@pytest.mark.parametrize("asked", ["utf-16", "utf-32"])
def test_text_without_the_byte_order_mark_that_utf16_or_utf32_needs_names_both_orders(
    tmp_path, asked
):
    path = write(tmp_path / "plain.txt", b"plain ASCII text\n" * 10)
    assert error(read_corpus, [path], encoding=asked) == (
        f"{path} does not start with the byte-order mark that --encoding {asked} needs to tell"
        f" the byte order; pass --encoding {asked}-le or {asked}-be, or the encoding the file is"
        " in (e.g. utf-8)"
    )


def test_a_binary_file_in_a_folder_read_as_utf16_is_still_skipped(tmp_path):
    write(tmp_path / "a.txt", ("\ufeffone\n").encode("utf-16"))
    write(tmp_path / "cat.png", PNG)
    assert read_corpus([tmp_path], encoding="utf-16", warn=lambda line: None) == "one\n"


def test_utf16_without_a_bom_in_a_folder_is_an_error_since_it_is_text_not_binary(tmp_path):
    write(tmp_path / "a.txt", b"one\n")
    w = write(tmp_path / "w.txt", "two\r\n".encode("utf-16-le"))
    assert error(read_corpus, [str(tmp_path)]) == (
        f"{w} looks like UTF-16-LE text without a byte-order mark, not utf-8; convert it to UTF-8"
        f" (iconv -f UTF-16LE -t UTF-8), or pass --encoding utf-16-le if every file in {tmp_path} is UTF-16-LE"
    )


# ----------------------------------------------------------------------------- errors


def test_invalid_utf8_names_the_file_the_byte_offset_and_the_way_out(tmp_path):
    path = write(tmp_path / "t.txt", b"abc\xffdef")
    message = error(read_corpus, [path])
    assert (
        path in message
        and "at byte 3;" in message
        and "--encoding" in message
        and "--errors replace" in message
    )


def test_invalid_utf8_past_the_first_chunk_reports_the_absolute_offset(tmp_path):
    n = corpus.CHUNK_BYTES + 12_345
    path = write(tmp_path / "t.txt", "é".encode() * (n // 2) + b"\xc3(")
    assert f"at byte {n // 2 * 2};" in error(read_corpus, [path])


def test_latin1_text_read_as_utf8_is_invalid_text_not_binary(tmp_path):
    path = write(
        tmp_path / "fr.txt", ("Le café est très chaud, à la française. " * 50).encode("latin-1")
    )
    message = error(read_corpus, [path])
    assert "invalid utf-8 at byte 6;" in message and "--encoding" in message


def test_a_truncated_character_at_the_end_of_the_file_is_reported_at_its_offset(tmp_path):
    assert "at byte 3;" in error(read_corpus, [write(tmp_path / "t.txt", b"abc\xe4\xb8")])


def test_invalid_utf8_in_a_zip_member_names_archive_colon_member(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"dir/bad.txt": b"ok\n\xfe"})
    message = error(read_corpus, [path])
    assert f"{path}:dir/bad.txt" in message and "at byte 3;" in message


def test_invalid_utf8_in_a_gz_reports_the_offset_in_the_decompressed_bytes(tmp_path):
    path = write(tmp_path / "t.gz", gzip.compress(b"hello\xff"))
    message = error(read_corpus, [path])
    assert path in message and "at byte 5;" in message


@pytest.mark.parametrize(
    "name, data, kind",
    [
        ("photo.txt", PNG, "PNG image"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG image"),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00", "GIF image"),
        ("libfoo.so", b"\x7fELF\x02\x01\x01\x00" + bytes(64), "ELF"),
        ("paper.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        ("archive.bin", b"PK\x03\x04\x14\x00\x00\x00", "zip archive"),
        ("data.bin", gzip.compress(b"text", mtime=0), "gzip"),
        ("image.webp", b"RIFF\x24\x00\x00\x00WEBPVP8 ", "WebP image"),
        ("app.db", b"SQLite format 3\x00" + bytes(100), "SQLite"),
        ("random.dat", bytes(range(128, 256)) * 40, "not utf-8"),
        ("mod.cpython-312.pyc", pyc(), "NUL bytes"),
    ],
)
def test_a_binary_file_is_named_as_such_not_as_invalid_text(tmp_path, name, data, kind):
    path = write(tmp_path / name, data)
    message = error(read_corpus, [path])
    assert (
        message.startswith(f"{path} looks like a binary file (")
        and kind in message
        and "not text" in message
    )


def test_a_zip_not_named_zip_is_told_to_be_renamed(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"a.txt": b"a"})
    os.rename(path, tmp_path / "c.data")
    assert "rename it to end in .zip" in error(read_corpus, [str(tmp_path / "c.data")])


@pytest.mark.parametrize("reader", [r for r in corpus.READERS if r.magic], ids=lambda r: r.name)
def test_a_file_in_a_readers_format_named_otherwise_is_told_the_suffix_that_reads_it(
    tmp_path, reader
):
    for i, magic in enumerate(reader.magic):
        path = write(tmp_path / f"data{i}.bin", magic + bytes(20))
        assert error(read_corpus, [path]).endswith(f"rename it to end in {reader.suffix}")
        assert corpus.reader_for(str(tmp_path / f"DATA{i}{reader.suffix.upper()}")) is reader


def test_a_missing_path_is_an_error_naming_it(tmp_path):
    missing = str(tmp_path / "nope.txt")
    assert error(read_corpus, [missing]) == f"{missing}: no such file or folder; check the path"


# A real chmod-000 file (with root's override capabilities dropped) is tested through the CLI
# in test_bad_input.py; here the library's message, whoever runs the tests.
def test_an_unreadable_file_error_names_it_and_the_way_out_even_as_root(tmp_path, monkeypatch):
    path = write(tmp_path / "secret.txt", b"secret")

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", file)

    # shadows the builtin inside the module that opens files only
    monkeypatch.setattr(corpus.reading, "open", denied, raising=False)
    assert error(read_corpus, [path]) == (
        f"{path}: permission denied; make it readable (chmod +r) or pass another path"
    )


def test_an_empty_corpus_is_an_error_naming_the_inputs(tmp_path):
    a = write(tmp_path / "a.txt", b"")
    b = write(tmp_path / "b.txt", b"\xef\xbb\xbf")  # only a BOM
    message = error(read_corpus, [a, b])
    assert message.startswith(f"corpus is empty: {a}, {b};")


def test_a_folder_without_text_files_is_an_error(tmp_path):
    write(tmp_path / "img.png", PNG)
    write(tmp_path / ".notes.txt", b"hidden")
    assert error(read_corpus, [str(tmp_path)]).startswith(f"folder {tmp_path} has no text files;")


def test_a_zip_without_text_members_is_an_error_listing_its_members(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"img.png": PNG})
    message = error(read_corpus, [path])
    assert path in message and "no text member" in message and "'img.png'" in message


def test_a_missing_zip_member_is_an_error_listing_a_few_members(tmp_path):
    path = make_zip(tmp_path / "c.zip", {f"part{i}.txt": b"x" for i in range(9)})
    message = error(read_corpus, [path], member="part9.txt")
    assert path in message and "'part9.txt'" in message and "'part0.txt'" in message
    assert "9 files in all" in message and "--member" in message


def test_member_without_a_zip_is_an_error(tmp_path):
    assert "--member" in error(read_corpus, [write(tmp_path / "a.txt", b"a")], member="a.txt")


def test_a_corrupt_zip_is_an_error(tmp_path):
    path = write(tmp_path / "c.zip", b"PK\x03\x04 this is not really a zip")
    message = error(read_corpus, [path])
    assert path in message and "not a valid zip archive" in message and "re-create" in message


def test_a_zip_member_with_damaged_data_is_an_error(tmp_path):
    path = make_zip(tmp_path / "c.zip", {"a.txt": b"hello world " * 1000})
    data = bytearray(Path(path).read_bytes())
    data[60:80] = b"\x00" * 20  # inside the deflated data of the only member
    Path(path).write_bytes(bytes(data))
    message = error(read_corpus, [path])
    assert path in message and ("corrupt" in message or "not a valid zip" in message)


def test_a_file_named_gz_that_is_not_gzip_is_an_error(tmp_path):
    path = write(tmp_path / "t.gz", b"plain text")
    message = error(read_corpus, [path])
    assert path in message and "corrupt gzip file" in message and "re-create" in message


def test_a_truncated_gz_is_an_error(tmp_path):
    path = write(tmp_path / "t.gz", gzip.compress(b"some text " * 1000)[:-30])
    assert "corrupt gzip file" in error(read_corpus, [path])


def test_an_unknown_encoding_is_an_error_naming_it(tmp_path):
    message = error(read_corpus, [write(tmp_path / "a.txt", b"a")], encoding="klingon-8")
    assert "'klingon-8'" in message and "--encoding" in message


@pytest.mark.parametrize(
    "option, value, hint",
    [
        ("errors", "surrogateescape", "--errors"),
        ("newlines", "crlf", "--newlines"),
        ("max_chars", 0, "--max-chars"),
    ],
)
def test_bad_option_values_are_errors(tmp_path, option, value, hint):
    message = error(read_corpus, [write(tmp_path / "a.txt", b"a")], **{option: value})
    assert repr(value) in message and hint in message


# ----------------------------------------------------------------------------- split_corpus


def test_split_puts_the_last_fraction_in_val():
    assert split_corpus("abcdefghij", 0.2) == ("abcdefgh", "ij")


def test_split_rounds_the_val_length_down():
    train, val = split_corpus("a" * 99, 0.1)
    assert (len(train), len(val)) == (90, 9)


def test_split_with_zero_fraction_has_an_empty_val():
    assert split_corpus("abc", 0.0) == ("abc", "")


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_split_rejects_fractions_outside_zero_to_one(fraction):
    assert "--val-fraction" in error(split_corpus, "abc", fraction)


@given(text=st.text(max_size=50), fraction=st.floats(0, 1, exclude_max=True))
def test_split_halves_join_back_to_the_text(text, fraction):
    train, val = split_corpus(text, fraction)
    assert train + val == text and len(val) == int(len(text) * fraction)


# ----------------------------------------------------------------------------- paths


def test_a_path_that_cannot_be_looked_up_says_why(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    too_long = str(tmp_path / ("n" * 300))
    assert error(read_corpus, [tmp_path / "loop"]) == (
        f"{tmp_path / 'loop'}: Too many levels of symbolic links; check the path"
    )
    assert error(read_corpus, [too_long]) == f"{too_long}: File name too long; check the path"
    write(tmp_path / "a.txt", b"a")
    assert error(read_corpus, [tmp_path / "a.txt" / "b"]).endswith(
        "Not a directory; check the path"
    )


def test_pipes_fifos_and_stdin_are_read_once_files_and_folders_again(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    write(tmp_path / "a.txt", b"abc")
    assert rereadable([tmp_path / "a.txt", tmp_path]) and not rereadable([tmp_path, fifo])
    assert not rereadable(["-"])
    assert source_signature([fifo]) is None  # its size and time say nothing of its text
    chunks = read_chunks([tmp_path / "a.txt", "-"], stdin=io.BytesIO(b"d"))
    assert (chunks.once, chunks.name) == (True, f"{tmp_path / 'a.txt'}, -")
    assert "".join(chunks) == "abc\nd"
