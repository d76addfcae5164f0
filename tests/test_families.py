"""The model-family table: each entry builds what it declares (its state's shapes, its weight
count, where its weights go), refuses the settings that are not its own, and importing the
table loads no TensorFlow."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from charlm.models.families import (
    FAMILIES,
    check,
    family,
    names,
    recipe_choice,
)
from charlm.models.lm import build_model, load_model
from charlm.models.memory import bytes_needed, param_count
from charlm.options.config import Config
from charlm.options.setting import OptionError
from charlm.training.widths import allowed_widths as widths
from charlm.training.widths import calibration_widths

VOCAB = 11


def tiny(name: str, **more) -> Config:
    """A two-layer model of ``name``, 8 units wide unless ``more`` says otherwise."""
    return Config(**{"model": name, "layers": 2, "units": 8, "embedding_dim": 4, "seed": 1, **more})


@pytest.mark.parametrize("name", names())
def test_every_family_builds_a_model_whose_state_has_the_declared_shapes(name):
    cfg = tiny(name)
    model = build_model(cfg, VOCAB)
    declared = family(name).state(cfg)
    assert model.state_shapes == declared
    assert [tuple(s.shape) for s in model.initial_state(3)] == [(3, *s) for s in declared]
    logits, state = model(tf.zeros([3, 5], tf.int32), model.initial_state(3))
    assert logits.shape == (3, 5, VOCAB)
    assert [tuple(s.shape) for s in state] == [(3, *s) for s in declared]


@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("embedding_dim", [0, 4])
def test_the_weight_count_a_family_declares_is_the_count_of_the_model_it_builds(
    name, embedding_dim
):
    cfg = tiny(name).replace(embedding_dim=embedding_dim)
    assert build_model(cfg, VOCAB).count_params() == param_count(cfg, VOCAB)


@pytest.mark.parametrize("name", names())
def test_a_model_saved_where_its_family_says_loads_back_with_the_same_logits(name, tmp_path):
    cfg = tiny(name)
    model = build_model(cfg, VOCAB)
    assert model.weights_suffix == family(name).weights_suffix
    path = tmp_path / f"weights{family(name).weights_suffix}"
    model.save(path)
    loaded = load_model(cfg, VOCAB, path)
    ids = tf.constant([[1, 2, 3, 4]], tf.int32)
    np.testing.assert_array_equal(
        model(ids, model.initial_state(1))[0].numpy(),
        loaded(ids, loaded.initial_state(1))[0].numpy(),
    )


@pytest.mark.parametrize("name", names())
def test_the_memory_estimate_grows_with_the_width_to_train_and_to_hold(name):
    for training in (True, False):
        needs = [bytes_needed(tiny(name, units=h), VOCAB, training) for h in (8, 64, 512)]
        assert needs == sorted(needs) and len(set(needs)) == 3


def test_an_unknown_family_is_an_option_error_naming_the_model_and_the_families():
    with pytest.raises(OptionError) as caught:
        family("transformer")
    e = caught.value
    assert (e.field, e.value) == ("model", "transformer")
    assert str(e) == (
        "model must be one of lstm, gru, rnn, scratch-rnn, scratch-gru, scratch-lstm, gpt, "
        "not 'transformer'"
    )
    with pytest.raises(OptionError, match="model must be one of"):
        check(Config(model="transformer"))


def test_a_precision_the_family_does_not_train_in_is_refused_with_the_way_out():
    with pytest.raises(OptionError) as caught:
        check(tiny("scratch-gru", precision="mixed_bfloat16"))
    e = caught.value
    assert e.field == "precision"
    assert e.worded("--precision") == (
        "--precision mixed_bfloat16 is for the Keras models (lstm, gru, rnn, gpt); scratch-gru "
        "trains in float32; drop the precision setting"
    )
    check(tiny("lstm", precision="mixed_bfloat16"))  # a Keras model trains in it


def test_a_setting_of_another_family_is_refused_and_its_own_family_takes_it():
    with pytest.raises(OptionError) as caught:
        check(tiny("lstm", reset_after=True))
    e = caught.value
    assert e.field == "reset_after"
    assert e.worded("--reset-after") == (
        "--reset-after applies only to scratch-gru, not to lstm; drop the setting"
    )
    check(tiny("scratch-gru", reset_after=True))
    check(tiny("lstm", reset_after=False))  # the default is no setting at all


def test_importing_the_table_and_the_memory_check_loads_no_tensorflow():
    code = (
        "import sys, charlm.models.families, charlm.models.memory\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_every_entry_is_complete_and_consistent():
    config_fields = {f.name for f in dataclasses.fields(Config)}
    for f in FAMILIES:
        assert set(f.fields) <= config_fields, f.name
        assert set(f.recipe.precisions) <= set(f.precisions) and f.precisions[0] == "float32"
        assert set(f.recipe.calibrate) <= set(f.recipe.widths), f.name
        assert list(f.recipe.widths) == sorted(set(f.recipe.widths)), f.name
    assert [f for f in FAMILIES if f.recipe.why] == [recipe_choice()]
    assert len(set(names())) == len(FAMILIES)


def test_the_recipe_chooses_only_widths_the_family_allows_with_the_other_settings():
    """A transformer's heads must divide its width into even head widths: with 64 heads, the
    recipe may not choose 64 or 192 (head widths 1 and 3); it measures two it may choose."""
    cfg = tiny("gpt", heads=64, units=256)
    assert widths(cfg) == (128, 256, 384, 512)
    assert calibration_widths(cfg) == (128, 256)
    assert calibration_widths(tiny("gpt", heads=3, units=192)) == (192, 384)
    assert widths(tiny("lstm")) == family("lstm").recipe.widths  # no rule: every width


def test_a_transformers_heads_must_split_its_width_into_even_heads():
    with pytest.raises(OptionError) as caught:
        check(tiny("gpt", units=64, heads=3))
    assert caught.value.worded("--heads") == (
        "--heads must divide units (64) into equal heads, not 3"
    )
    with pytest.raises(OptionError) as caught:
        check(tiny("gpt", units=32, heads=32))
    assert caught.value.worded("--heads") == (
        "--heads must leave each head an even width, not 32; units / heads is 1, and rotary "
        "positions turn features in pairs"
    )
    check(tiny("gpt", units=32, heads=4))  # 8 each
