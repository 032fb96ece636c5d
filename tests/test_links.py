"""A page's settings as URL parameters: what a link may ask for, read back exactly, and everything else refused."""

from __future__ import annotations

import pytest

from explorer.logic import links


@pytest.mark.parametrize("value", [0.0, -10.0, 0.15000000000000002, 2e-4, 1e-5, 2**31 - 1, 7, 0.35, -19.5])
def test_numbers_are_written_short_and_read_back_exactly(value):
    text = links.number_text(value)
    assert float(text) == value
    assert len(text) <= 22


def test_a_link_reads_back_what_the_page_wrote():
    fields = [links.choice("kind", ["Normal", "Uniform"]), links.number("mean", -20, 20, 0.5),
              links.number("std", 0, 5, 0.05), links.whole("n", 1, 128), links.seed("seed"),
              links.span("range", -20, 20, 0.5), links.flag("smooth"), links.choice("lr", [1e-5, 2e-4, 1e-3])]
    state = {"kind": "Uniform", "mean": -10.0, "std": 0.15000000000000002, "n": 16, "seed": 2**31 - 1,
             "range": (-4.5, 6.0), "smooth": False, "lr": 2e-4}
    params = links.written(fields, state, {})
    assert params["mean"] == "-10" and params["range"] == "-4.5,6" and params["smooth"] == "false"
    assert links.read(fields, params) == links.Reading(state, ())


def test_values_at_the_defaults_are_left_out_of_the_link():
    fields = [links.seed("seed"), links.number("mean", -20, 20, 0.5)]
    assert links.written(fields, {"seed": 0, "mean": -10.0}, {"seed": 0, "mean": 0.0}) == {"mean": "-10"}


HOSTILE = ["1e300", "-1e300", "nan", "inf", "-inf", "x" * 10_000, "", " ", "0x10", "1,2,3", "[1]", "None", "\x00",
           "-0.3", "20.25", "1e-400x"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_values_are_refused_never_raised(text):
    fields = [links.number("mean", -20, 20, 0.5), links.whole("n", 1, 128), links.seed("seed"),
              links.span("range", -20, 20, 0.5), links.choice("kind", ["Normal", "Uniform"]), links.flag("on"),
              links.choice("attribute", None)]
    reading = links.read(fields, {f.param: text for f in fields})
    for key in reading.values:  # only free text the page itself checks may pass, and only short, printable text
        assert key == "attribute" and text.strip() and len(text) <= links.LONGEST_VALUE
    assert set(reading.refused) | set(reading.values) == {f.param for f in fields}


def test_numbers_must_lie_on_the_sliders_steps_and_range():
    mean = links.number("mean", -20, 20, 0.5)
    assert mean.parse("-9.5") == -9.5
    for text in ("-9.4", "20.5", "-20.5"):
        with pytest.raises(links.Refused):
            mean.parse(text)
    with pytest.raises(links.Refused):
        links.whole("n", 4, 64, 4).parse("6")
    with pytest.raises(links.Refused):
        links.seed("seed").parse("2.5")
    assert links.seed("seed").parse("7") == 7 and isinstance(links.seed("seed").parse("7.0"), int)


def test_choices_match_numbers_written_another_way():
    assert links.choice("step", [0.5, 1.0, 2.0]).parse("2") == 2.0
    assert links.choice("lr", [1e-5, 2e-4]).parse("0.0002") == 2e-4
    with pytest.raises(links.Refused):
        links.choice("step", [0.5, 1.0, 2.0]).parse("3")


def test_the_sentence_names_the_refused_settings_briefly():
    sentence = links.refused_sentence(["model", "mean", "x" * 10_000] + [f"p{i}" for i in range(20)])
    assert sentence.count(".") <= 3 and "`model`" in sentence and len(sentence) < 400
    assert "more" in sentence


def test_query_strings_keep_model_folders_readable():
    assert links.query_string({"model": "celeba/dcgan", "range": "-4,4", "d_ratio": "1/2"}) == \
        "?model=celeba/dcgan&range=-4,4&d_ratio=1/2"
    assert links.query_string({}) == ""
