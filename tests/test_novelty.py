"""Specification of charlm.novelty.index: how much of a sample was copied verbatim from the training text."""

import itertools
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.cli.render import format_report
from charlm.errors import CharLMError
from charlm.novelty import index as novelty
from charlm.novelty.build import check_memory, memory_needed
from charlm.novelty.file import INDEX_FILE
from charlm.novelty.index import Match, NoveltyIndex, suffix_array

# -- the obvious answers, by brute force --------------------------------------------------------


def brute_matching_statistics(text, sample):
    """For each j: the longest prefix of sample[j:] that is a substring of text."""
    out = []
    for j in range(len(sample)):
        length = 0
        while j + length < len(sample) and sample[j : j + length + 1] in text:
            length += 1
        out.append(length)
    return out


def brute_longest_match(text, sample):
    """The longest substring of sample found in text: the first in the sample, at its first offset."""
    for length in range(len(sample), 0, -1):
        for start in range(len(sample) - length + 1):
            offset = text.find(sample[start : start + length])
            if offset >= 0:
                return Match(length, offset, start)
    return Match(0, None, None)


def brute_share(text, sample, n):
    grams = [sample[j : j + n] for j in range(len(sample) - n + 1)]
    return sum(g in text for g in grams) / len(grams) if grams else 0.0


# small alphabets make long repeats likely; "z" never occurs in the texts
texts = st.text(alphabet="abc", max_size=80)
samples = st.text(alphabet="abcz", max_size=40)
# every way the text's ids are stored: a byte each, or two big-endian bytes once the text has
# more than 255 distinct characters (300 CJK characters in front); and every first-pass cap
# of a query (matches longer than it are settled by bisection): the answers must not change
WIDE = "".join(chr(0x4E00 + i) for i in range(300))
builds = st.tuples(st.sampled_from(["", WIDE]), st.sampled_from([1, 2, 3, 64]))


def index_of(text, build):
    """The index of ``prefix + text`` (``prefix``: widens the ids, or not), and that text."""
    prefix, cap = build
    index = NoveltyIndex(prefix + text, sha256="0" * 64)
    index.cap = cap
    return index, prefix + text


# -- against brute force ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(texts, samples, builds)
def test_matching_statistics_are_the_longest_prefix_found_at_each_position(text, sample, build):
    index, text = index_of(text, build)
    assert index.matching_statistics(sample).tolist() == brute_matching_statistics(text, sample)


@settings(max_examples=300, deadline=None)
@given(texts, samples, builds)
def test_longest_match_is_the_first_longest_substring_at_its_first_offset(text, sample, build):
    index, text = index_of(text, build)
    assert index.longest_match(sample) == brute_longest_match(text, sample)


@settings(max_examples=200, deadline=None)
@given(texts, samples, builds, st.integers(1, 8))
def test_copied_ngram_share_is_the_share_of_ngrams_found_in_the_text(text, sample, build, n):
    index, text = index_of(text, build)
    assert index.copied_ngram_share(sample, n) == pytest.approx(brute_share(text, sample, n))


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=15),
)
def test_any_unicode_text_is_handled_one_code_point_per_character(text, sample):
    index = NoveltyIndex(text + sample[::2], sha256="0" * 64)
    assert index.longest_match(sample) == brute_longest_match(text + sample[::2], sample)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 3), max_size=60),
    st.sampled_from(["u1", ">u2", ">u4"]),
    st.sampled_from([0, 250, 65000]),
)
def test_the_suffix_array_sorts_all_suffixes(symbols, dtype, offset):
    # ids of two or four bytes are sorted by their big-endian bytes: every width, and values
    # whose high bytes differ (offset), must give the order of the whole suffixes
    symbols = [s + offset for s in symbols] if dtype != "u1" else symbols
    sa = suffix_array(np.array(symbols, dtype=dtype))
    heads = [tuple(symbols[p:]) for p in sa]
    assert sorted(sa.tolist()) == list(range(len(symbols)))
    assert heads == sorted(heads)
    assert all(a < b for a, b in itertools.pairwise(heads))  # fully sorted: no ties are left


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet="ab", min_size=1, max_size=12),
    st.integers(1, 8),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 60)), min_size=1, max_size=4),
    builds,
)
def test_samples_pieced_from_a_repetitive_text_match_brute_force(unit, repeats, pieces, build):
    # long copies in a text made of repeats: many suffixes share long prefixes, so the search
    # goes through many blocks of comparison; a "z" between pieces breaks each copy
    index, text = index_of(unit * repeats + "c" + unit, build)
    sample = "z".join(text[a : a + k] for a, k in pieces)
    assert index.matching_statistics(sample).tolist() == brute_matching_statistics(text, sample)
    assert index.longest_match(sample) == brute_longest_match(text, sample)


def test_a_text_of_more_than_65535_distinct_characters_is_indexed_with_four_byte_ids():
    text = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 300)) * 2 + "".join(
        chr(c) for c in range(0x10000, 0x10000 + 66_000)
    )
    index = NoveltyIndex(text, sha256="0" * 64)
    assert index.symbols.dtype == np.dtype(">u4")
    for sample in (text[100:400] + "z" + text[-50:], text[250:700], "z" + text[70_000:70_040]):
        assert index.longest_match(sample) == brute_longest_match(text, sample)
        assert index.matching_statistics(sample).tolist() == brute_matching_statistics(text, sample)


# -- memory --------------------------------------------------------------------------------------


def test_memory_needed_counts_the_ids_and_the_suffix_array():
    assert memory_needed(10**8, 1) - memory_needed(0, 1) == 5 * 10**8  # 1 + 4 bytes a char
    assert memory_needed(10**8, 2) - memory_needed(0, 2) == 14 * 10**8  # 2 + 8 + 4 after
    assert memory_needed(3 * 10**9, 1) - memory_needed(0, 1) == 27 * 10**9  # 8-byte positions


def test_a_text_too_big_for_the_memory_is_refused_in_one_line_that_says_how_much():
    with pytest.raises(CharLMError) as refused:
        check_memory(10**9, 100, available=2 * 2**30)
    message = str(refused.value)
    assert "\n" not in message and "1,000,000,000 characters" in message
    assert "needs about 4.7 GiB" in message and "2.0 GiB is available" in message
    check_memory(10**9, 100, available=5 * 2**30)  # enough: no error


# -- exact cases --------------------------------------------------------------------------------

SHAKESPEARE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
)


def test_a_sample_copied_from_the_text_is_all_copied():
    sample = SHAKESPEARE[15:60]
    report = NoveltyIndex(SHAKESPEARE).report(sample)
    assert (report["longest_match"], report["offset"], report["copied_ngram_share"]) == (
        45,
        15,
        1.0,
    )


def test_a_copy_longer_than_a_block_of_comparison_is_found_whole():
    text = "abcdefgh" * 40 + "the end"
    index = NoveltyIndex(text)
    assert novelty.BLOCK < 247 and len(index) == len(text)
    assert index.longest_match("xx" + text[3:250] + "yy") == Match(247, 3, 2)


def test_a_sample_of_unseen_characters_copies_nothing():
    report = NoveltyIndex(SHAKESPEARE).report("ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ")
    assert (report["longest_match"], report["offset"], report["copied_ngram_share"]) == (
        0,
        None,
        0.0,
    )
    assert report["longest_match_text"] == "" and report["line"] is None


def test_a_sample_shorter_than_n_has_no_ngrams_and_a_share_of_0():
    report = NoveltyIndex(SHAKESPEARE).report("Speak", n=20)
    assert (report["ngrams"], report["copied_ngram_share"], report["longest_match"]) == (0, 0.0, 5)


def test_an_empty_text_or_sample_copies_nothing():
    assert NoveltyIndex("").longest_match("abc") == Match(0, None, None)
    assert NoveltyIndex("abc").longest_match("") == Match(0, None, None)


def test_the_report_says_where_the_copy_is_by_offset_line_and_column():
    report = NoveltyIndex(SHAKESPEARE).report("xx hear me speak. yy", n=5)
    assert report["longest_match_text"] == " hear me speak."
    assert (report["offset"], report["line"], report["column"], report["sample_start"]) == (
        45,
        2,
        31,
        2,
    )
    assert SHAKESPEARE[45 : 45 + 15] == " hear me speak."


def test_line_and_column_count_from_1():
    index = NoveltyIndex("ab\ncd\n\nef")
    assert [index.line_and_column(i) for i in (0, 2, 3, 6, 7, 8)] == [
        (1, 1),
        (1, 3),
        (2, 1),
        (3, 1),
        (4, 1),
        (4, 2),
    ]


def test_n_below_1_is_refused():
    with pytest.raises(ValueError, match="n must be at least 1"):
        NoveltyIndex("abc").report("abc", n=0)


def test_format_report_is_one_line_with_the_copy_quoted_and_the_share():
    line = format_report(NoveltyIndex(SHAKESPEARE).report("xx speak.\n\nAll yy", n=5))
    assert line == (
        r'longest copy 12 chars (line 2, column 39 of the training text): " speak.\n\nAll"; '
        "8 of 13 5-grams copied (61.5%)"
    )


def test_format_report_of_nothing_copied():
    assert format_report(NoveltyIndex("abc").report("xyz", n=2)) == (
        "no character of the sample occurs in the training text; 0 of 2 2-grams copied (0.0%)"
    )


# -- on disk ------------------------------------------------------------------------------------


def test_a_saved_index_loads_and_answers_the_same(tmp_path):
    index = NoveltyIndex(SHAKESPEARE)
    index.save(tmp_path / "index.bin")
    loaded = NoveltyIndex.load(tmp_path / "index.bin")
    assert (loaded.sha256, loaded.vocab, len(loaded)) == (
        index.sha256,
        index.vocab,
        len(SHAKESPEARE),
    )
    assert loaded.report("Before we go, hear me speak") == index.report(
        "Before we go, hear me speak"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["index.bin"]  # no temporary file left
    for array in (loaded.sa, loaded.symbols):  # views of the file, memory-mapped: not read in
        assert not array.flags.owndata and not array.flags.writeable


@pytest.mark.parametrize("text", ["", "a", WIDE + "ab\nab"])
def test_an_empty_or_wide_index_saves_and_loads(tmp_path, text):
    NoveltyIndex(text).save(tmp_path / "index.bin")
    loaded = NoveltyIndex.load(tmp_path / "index.bin")
    assert len(loaded) == len(text)
    assert loaded.longest_match("xab") == brute_longest_match(text, "xab")


def test_an_index_that_cannot_be_written_is_one_error_line_and_leaves_nothing(tmp_path):
    with pytest.raises(CharLMError, match="cannot write the novelty index"):
        NoveltyIndex(SHAKESPEARE).save(tmp_path / "no-such-folder" / "index.bin")
    assert list(tmp_path.iterdir()) == []


def test_cached_builds_once_then_loads_while_the_text_is_the_same(tmp_path, monkeypatch):
    path = tmp_path / INDEX_FILE
    first = NoveltyIndex.cached(SHAKESPEARE, path)
    monkeypatch.setattr(novelty, "suffix_array", lambda *a: pytest.fail("built again"))
    assert NoveltyIndex.cached(SHAKESPEARE, path).sha256 == first.sha256


def test_cached_rebuilds_for_another_text_or_a_broken_file(tmp_path):
    path = tmp_path / INDEX_FILE
    NoveltyIndex.cached(SHAKESPEARE, path)
    assert NoveltyIndex.cached("other text", path).longest_match("the text") == Match(5, 5, 3)
    path.write_bytes(b"garbage")
    assert NoveltyIndex.cached("other text", path).longest_match("other") == Match(5, 0, 0)


def _records(path, meta: dict, *arrays):
    """Write a file laid out as an index: a JSON header, then ``.npy`` records."""
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.frombuffer(json.dumps(meta).encode(), np.uint8))
        for array in arrays:
            np.lib.format.write_array(f, array)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a zip", "not a readable novelty index"),
        (None, "expected a header with"),
        ("cut", "not a readable novelty index (the file is cut short"),
        ("version", "unsupported version 1"),
    ],
)
def test_loading_a_file_that_is_not_an_index_says_so_in_one_line(tmp_path, content, message):
    path = tmp_path / "index.bin"
    if content is None:
        _records(path, {"sa": 1}, np.arange(3, dtype=np.int32), np.arange(3, dtype=np.uint8))
    elif content == "cut":
        NoveltyIndex(SHAKESPEARE).save(path)
        path.write_bytes(path.read_bytes()[:-1])
    elif content == "version":
        index = NoveltyIndex(SHAKESPEARE)
        index.save(path)
        _records(path, {**json.loads(_header(path)), "version": 1}, index.sa, index.symbols)
    else:
        path.write_bytes(content)
    with pytest.raises(CharLMError, match=re.escape(message)):
        NoveltyIndex.load(path)


def _header(path) -> str:
    with open(path, "rb") as f:
        return np.lib.format.read_array(f, allow_pickle=False).tobytes().decode()


def test_loading_a_missing_index_says_so(tmp_path):
    with pytest.raises(CharLMError, match="no such novelty index"):
        NoveltyIndex.load(tmp_path / "nope.bin")


def test_the_index_file_holds_no_pickled_objects(tmp_path):
    NoveltyIndex(SHAKESPEARE).save(tmp_path / "index.bin")
    with open(tmp_path / "index.bin", "rb") as f:
        dtypes = []
        while f.read(1):
            f.seek(-1, 1)
            dtypes.append(np.lib.format.read_array(f, allow_pickle=False).dtype)
    assert len(dtypes) == 3 and all(d is not np.dtype(object) for d in dtypes)


def test_the_usage_examples_in_the_docstrings_hold():
    import doctest

    from charlm.novelty import build as novelty_build
    from charlm.novelty import file as novelty_file

    for module in (novelty, novelty_build, novelty_file):
        assert doctest.testmod(module).failed == 0
