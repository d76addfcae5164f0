"""Specification of charlm.use.novelty: how much of a sample was copied verbatim from the training text."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.use import novelty
from charlm.errors import CharLMError
from charlm.use.novelty import Match, NoveltyIndex, format_report, suffix_array


# -- the obvious answers, by brute force --------------------------------------------------------

def brute_matching_statistics(text, sample):
    """For each j: the longest prefix of sample[j:] that is a substring of text."""
    out = []
    for j in range(len(sample)):
        length = 0
        while j + length < len(sample) and sample[j:j + length + 1] in text:
            length += 1
        out.append(length)
    return out


def brute_longest_match(text, sample):
    """The longest substring of sample found in text: the first in the sample, at its first offset."""
    for length in range(len(sample), 0, -1):
        for start in range(len(sample) - length + 1):
            offset = text.find(sample[start:start + length])
            if offset >= 0:
                return Match(length, offset, start)
    return Match(0, None, None)


def brute_share(text, sample, n):
    grams = [sample[j:j + n] for j in range(len(sample) - n + 1)]
    return sum(g in text for g in grams) / len(grams) if grams else 0.0


# small alphabets make long repeats likely; "z" never occurs in the texts
texts = st.text(alphabet="abc", max_size=80)
samples = st.text(alphabet="abcz", max_size=40)
# every way the index can be built: sorted shallow (matches longer than the depth are
# followed along diagonals) or deep; the answers must not depend on it
builds = st.sampled_from([dict(), dict(max_depth=1), dict(max_depth=2, max_group=1),
                          dict(max_depth=3, max_group=2), dict(max_group=1),
                          dict(max_depth=5, max_group=1000)])


def index_of(text, build):
    return NoveltyIndex(text, sha256="0" * 64, **build)


# -- against brute force ------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(texts, samples, builds)
def test_matching_statistics_are_the_longest_prefix_found_at_each_position(text, sample, build):
    got = index_of(text, build).matching_statistics(sample).tolist()
    assert got == brute_matching_statistics(text, sample)


@settings(max_examples=300, deadline=None)
@given(texts, samples, builds)
def test_longest_match_is_the_first_longest_substring_at_its_first_offset(text, sample, build):
    assert index_of(text, build).longest_match(sample) == brute_longest_match(text, sample)


@settings(max_examples=200, deadline=None)
@given(texts, samples, builds, st.integers(1, 8))
def test_copied_ngram_share_is_the_share_of_ngrams_found_in_the_text(text, sample, build, n):
    assert index_of(text, build).copied_ngram_share(sample, n) == pytest.approx(brute_share(text, sample, n))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
       st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=15))
def test_any_unicode_text_is_handled_one_code_point_per_character(text, sample):
    index = NoveltyIndex(text + sample[::2], sha256="0" * 64)
    assert index.longest_match(sample) == brute_longest_match(text + sample[::2], sample)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 3), max_size=60), st.sampled_from([1, 2, 3, 5, 1024]),
       st.sampled_from([1, 2, 1000]), st.sampled_from([3, 2**20]))
def test_the_suffix_array_sorts_suffixes_by_their_first_depth_symbols(symbols, max_depth, max_group,
                                                                       alphabet_size):
    # a big alphabet packs few symbols per sort pass: the two-pass first sort is exercised
    sa, depth = suffix_array(np.array(symbols, dtype=np.uint32), alphabet_size, max_group, max_depth)
    heads = [tuple(symbols[p:p + depth]) + (0,) * (p + depth - len(symbols)) for p in sa]
    assert sorted(sa.tolist()) == list(range(len(symbols)))
    assert heads == sorted(heads)
    biggest = max((heads.count(h) for h in heads), default=0)
    assert depth == max_depth or biggest <= max_group


# -- exact cases --------------------------------------------------------------------------------

SHAKESPEARE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def test_a_sample_copied_from_the_text_is_all_copied():
    sample = SHAKESPEARE[15:60]
    report = NoveltyIndex(SHAKESPEARE).report(sample)
    assert (report["longest_match"], report["offset"], report["copied_ngram_share"]) == (45, 15, 1.0)


def test_a_copy_longer_than_the_sort_depth_is_found_whole():
    text = "abcdefgh" * 40 + "the end"
    index = NoveltyIndex(text, max_depth=4, max_group=1)
    assert index.depth == 4
    assert index.longest_match("xx" + text[3:250] + "yy") == Match(247, 3, 2)


def test_a_sample_of_unseen_characters_copies_nothing():
    report = NoveltyIndex(SHAKESPEARE).report("ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ")
    assert (report["longest_match"], report["offset"], report["copied_ngram_share"]) == (0, None, 0.0)
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
    assert (report["offset"], report["line"], report["column"], report["sample_start"]) == (45, 2, 31, 2)
    assert SHAKESPEARE[45:45 + 15] == " hear me speak."


def test_line_and_column_count_from_1():
    index = NoveltyIndex("ab\ncd\n\nef")
    assert [index.line_and_column(i) for i in (0, 2, 3, 6, 7, 8)] == [(1, 1), (1, 3), (2, 1), (3, 1), (4, 1), (4, 2)]


def test_n_below_1_is_refused():
    with pytest.raises(ValueError, match="n must be at least 1"):
        NoveltyIndex("abc").report("abc", n=0)


def test_format_report_is_one_line_with_the_copy_quoted_and_the_share():
    line = format_report(NoveltyIndex(SHAKESPEARE).report("xx speak.\n\nAll yy", n=5))
    assert line == (r'longest copy 12 chars (line 2, column 39 of the training text): " speak.\n\nAll"; '
                    "8 of 13 5-grams copied (61.5%)")


def test_format_report_of_nothing_copied():
    assert format_report(NoveltyIndex("abc").report("xyz", n=2)) == (
        "no character of the sample occurs in the training text; 0 of 2 2-grams copied (0.0%)")


# -- on disk ------------------------------------------------------------------------------------

def test_a_saved_index_loads_and_answers_the_same(tmp_path):
    index = NoveltyIndex(SHAKESPEARE, max_depth=3)
    index.save(tmp_path / "index.npz")
    loaded = NoveltyIndex.load(tmp_path / "index.npz")
    assert (loaded.sha256, loaded.depth, len(loaded)) == (index.sha256, 3, len(SHAKESPEARE))
    assert loaded.report("Before we go, hear me speak") == index.report("Before we go, hear me speak")
    assert [p.name for p in tmp_path.iterdir()] == ["index.npz"]  # no temporary file left


def test_cached_builds_once_then_loads_while_the_text_is_the_same(tmp_path, monkeypatch):
    path = tmp_path / novelty.INDEX_FILE
    first = NoveltyIndex.cached(SHAKESPEARE, path)
    monkeypatch.setattr(novelty, "suffix_array", lambda *a: pytest.fail("built again"))
    assert NoveltyIndex.cached(SHAKESPEARE, path).sha256 == first.sha256


def test_cached_rebuilds_for_another_text_or_a_broken_file(tmp_path):
    path = tmp_path / novelty.INDEX_FILE
    NoveltyIndex.cached(SHAKESPEARE, path)
    assert NoveltyIndex.cached("other text", path).longest_match("the text") == Match(5, 5, 3)
    path.write_bytes(b"garbage")
    assert NoveltyIndex.cached("other text", path).longest_match("other") == Match(5, 0, 0)


@pytest.mark.parametrize("content, message", [
    (b"not a zip", "not a readable novelty index"),
    (None, "expected the arrays"),
])
def test_loading_a_file_that_is_not_an_index_says_so_in_one_line(tmp_path, content, message):
    path = tmp_path / "index.npz"
    if content is None:
        np.savez(path, sa=np.arange(3))
    else:
        path.write_bytes(content)
    with pytest.raises(CharLMError, match=message):
        NoveltyIndex.load(path)


def test_loading_a_missing_index_says_so(tmp_path):
    with pytest.raises(CharLMError, match="no such novelty index"):
        NoveltyIndex.load(tmp_path / "nope.npz")


def test_the_index_file_holds_no_pickled_objects(tmp_path):
    NoveltyIndex(SHAKESPEARE).save(tmp_path / "index.npz")
    with np.load(tmp_path / "index.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_the_usage_examples_in_the_docstrings_hold():
    import doctest

    assert doctest.testmod(novelty).failed == 0
