"""Every setting of charlm, declared once: what it is called, what it takes, its help text,
and the one error a bad value raises (:class:`~charlm.options.setting.OptionError`, which
names the field; each face words that name in its own language).

    setting.py   a field that carries its help, choices, bounds and flag; OptionError
    config.py    Config: every setting of a run (TOML keys, train's flags)
    rules.py     the ranges and rules a Config follows, checked once
    toml.py      a Config as TOML: presets read, config.toml written, errors located
    sampling.py  SamplingOptions: how a sample is drawn
    limits.py    Limits: what one server takes at most

This ``__init__`` imports nothing, so that any module may import one of these without
pulling in the others.
"""
