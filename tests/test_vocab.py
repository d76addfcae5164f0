"""Specification of charlm.text.vocab: chars <-> ids and the vocab.json file."""

import json
import os

import numpy as np
import pytest
from conftest import error
from hypothesis import given, settings
from hypothesis import strategies as st

from charlm.text import vocab as vocab_module
from charlm.text.vocab import UNK, Vocab

any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)


def doc(**changes) -> str:
    d = {"format": "charlm-vocab", "version": 1, "unk": "<unk>", "chars": ["a", "b", "c"]}
    d.update(changes)
    return json.dumps(d, ensure_ascii=False)


# ----------------------------------------------------------------------------- ids


def test_id_0_is_unk_and_the_other_ids_are_the_distinct_chars_sorted_by_code_point():
    assert Vocab.from_text("hello, world").chars == [
        UNK,
        " ",
        ",",
        "d",
        "e",
        "h",
        "l",
        "o",
        "r",
        "w",
    ]


def test_len_counts_unk():
    assert len(Vocab.from_text("aab")) == 3


def test_encode_maps_each_char_to_its_id():
    assert Vocab.from_text("hello").encode("hole").tolist() == [2, 4, 3, 1]


def test_encode_maps_unseen_chars_to_0():
    assert Vocab.from_text("ab").encode("a€b😀\U0010ffff").tolist() == [1, 0, 2, 0, 0]


def test_encode_maps_a_lone_surrogate_to_0_instead_of_raising():
    assert Vocab.from_text("ab").encode("a\udcffb").tolist() == [1, 0, 2]


def test_encode_of_empty_text_is_an_empty_array():
    ids = Vocab.from_text("ab").encode("")
    assert ids.shape == (0,) and ids.dtype == np.uint16


def test_encode_is_uint16_up_to_65536_ids():
    text = "".join(chr(c) for c in range(0x20000, 0x20000 + 65535))
    assert (
        len(Vocab.from_text(text)) == 65536
        and Vocab.from_text(text).encode(text).dtype == np.uint16
    )


def test_encode_is_uint32_beyond_65536_ids():
    text = "".join(chr(c) for c in range(0x20000, 0x20000 + 70000))
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.uint32 and int(ids[-1]) == 70000 and vocab.decode(ids) == text


def test_encode_handles_20_million_characters():
    text = "The quick brown fox jumps over the lazy dog. 床前明月光\n" * 400_000  # 20.4M chars
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.uint16 and len(ids) == len(text)
    assert vocab.decode(ids[:53]) == text[:53] and vocab.decode(ids[-53:]) == text[-53:]


def test_encode_and_decode_agree_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(vocab_module, "CHUNK_CHARS", 3)
    text = "abcdefghij😀中"
    vocab = Vocab.from_text(text)
    assert vocab.encode(text).tolist() == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        12,
        11,
    ]  # 中 U+4E2D < 😀 U+1F600
    assert vocab.decode(vocab.encode(text)) == text


def test_decode_turns_ids_back_into_text():
    vocab = Vocab.from_text("hello")
    assert vocab.decode([2, 1, 3, 3, 4]) == "hello"


def test_decode_turns_id_0_into_the_replacement_character():
    assert Vocab.from_text("ab").decode([1, 0, 2]) == "a\ufffdb"


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint16, np.uint32])
def test_decode_accepts_any_integer_array(dtype):
    assert Vocab.from_text("abc").decode(np.array([3, 2, 1], dtype=dtype)) == "cba"


def test_decode_accepts_a_single_id_and_an_empty_list():
    vocab = Vocab.from_text("abc")
    assert (vocab.decode(np.int64(2)), vocab.decode([])) == ("b", "")


@pytest.mark.parametrize("bad", [3, -1])
def test_decode_of_an_id_outside_the_vocab_is_an_error(bad):
    message = error(Vocab.from_text("ab").decode, [1, bad])
    assert f"id {bad}" in message and "3 ids" in message and "vocab.json" in message


def test_unknown_chars_lists_unseen_chars_once_in_order_of_first_appearance():
    vocab = Vocab.from_text("床前明月光")
    assert vocab.unknown_chars("明月几时有？几时😀有") == ["几", "时", "有", "？", "😀"]


def test_unknown_chars_is_empty_for_known_text():
    assert Vocab.from_text("hello").unknown_chars("hole") == []


def test_from_text_rejects_a_lone_surrogate():
    assert "U+D800" in error(Vocab.from_text, "ab\ud800")


@settings(max_examples=80, deadline=None)
@given(text=any_text)
def test_decode_inverts_encode_for_any_text(text):
    vocab = Vocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text


@settings(max_examples=80, deadline=None)
@given(train=any_text, other=any_text)
def test_encode_gives_0_exactly_for_unknown_chars(train, other):
    vocab = Vocab.from_text(train)
    ids = vocab.encode(other)
    assert [c for c, i in zip(other, ids, strict=True) if i == 0] == [
        c for c in other if c not in set(train)
    ]
    assert vocab.unknown_chars(other) == list(
        dict.fromkeys(c for c in other if c not in set(train))
    )


# ----------------------------------------------------------------------------- JSON


def test_to_json_has_the_documented_format():
    assert json.loads(Vocab.from_text("ba中").to_json()) == {
        "format": "charlm-vocab",
        "version": 1,
        "unk": "<unk>",
        "chars": ["a", "b", "中"],
    }


def test_to_json_writes_non_ascii_chars_as_themselves():
    assert "中" in Vocab.from_text("中").to_json()


@settings(max_examples=80, deadline=None)
@given(text=any_text)
def test_json_round_trips_any_vocab(text):
    vocab = Vocab.from_text(text)
    assert Vocab.from_json(vocab.to_json()) == vocab


def test_save_then_load_gives_the_same_vocab(tmp_path):
    vocab = Vocab.from_text("ROMEO:\n床前明月光 😀\x00\r")
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == vocab


def test_save_replaces_an_existing_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "vocab.json"
    Vocab.from_text("old").save(path)
    Vocab.from_text("new").save(str(path))
    assert Vocab.load(path).chars[1:] == ["e", "n", "w"] and os.listdir(tmp_path) == ["vocab.json"]


def test_save_into_a_missing_folder_is_an_error_naming_the_path(tmp_path):
    path = tmp_path / "no" / "vocab.json"
    assert str(path) in error(Vocab.from_text("a").save, path)


def test_load_of_a_missing_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "vocab.json"
    assert error(Vocab.load, path).startswith(f"{path}: no such vocabulary file")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (doc(format="other"), "format"),
        (doc(version=2), "version"),
        (doc(version=True), "version"),
        (doc(unk="?"), "unk"),
        (doc(chars="abc"), "list"),
        (doc(chars=["a", "bc"]), "not a single character"),
        (doc(chars=["a", 7]), "not a single character"),
        (doc(chars=["e\u0301"]), "not a single character"),
        (doc(chars=["a", "b", "a"]), "twice"),
        (doc(chars=["a", "a"]), "twice"),
        (doc(chars=["b", "a"]), "not sorted"),
        (doc(extra=1), "unexpected keys"),
    ],
)
def test_from_json_rejects_an_edited_or_corrupted_file(text, problem):
    message = error(Vocab.from_json, text, source="runs/x/vocab.json")
    assert message.startswith("runs/x/vocab.json: ") and problem in message
    assert "edited or corrupted" in message and "retrain" in message


def test_load_names_the_file_of_a_corrupted_vocab(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(doc(chars=["z", "a"]), encoding="utf-8")
    assert error(Vocab.load, path).startswith(f"{path}: characters are not sorted")
