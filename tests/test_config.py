"""The config base: Literal choices, bounds, JSON round trip, unknown keys, and the generated CLI."""

import argparse
import json
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pytest

from llm4sbr_adapter.config import ConfigBase, ConfigError, check_fields, setting
from llm4sbr_adapter.config_cli import add_config_arguments, config_from_args, flag_settings


@dataclass
class ToyConfig(ConfigBase):
    FORMAT: ClassVar[str] = "toy_config"
    width: int = setting(64, "hidden width", minimum=1)
    mode: Literal["fast", "exact"] = setting("exact", "how to search")
    rate: float = setting(0.5, "a rate in (0, 1]", minimum=0.0, exclusive_minimum=True, maximum=1.0)
    names: tuple[str, ...] = setting(("long", "short"), "perspective names")
    seed: int | None = setting(None, "optional seed")
    verbose: bool = setting(False, "say more")

    def validate(self) -> None:
        self.names = tuple(self.names)
        if not self.names:
            self.fail("names", "must name at least one perspective")


def test_choices_bounds_and_types_are_checked_with_the_field_named():
    with pytest.raises(ConfigError, match=r"ToyConfig.mode must be one of \['fast', 'exact'\], got 'slow'") as err:
        ToyConfig(mode="slow")
    assert err.value.field == "mode"
    with pytest.raises(ConfigError, match=r"ToyConfig.width must be >= 1, got 0"):
        ToyConfig(width=0)
    with pytest.raises(ConfigError, match=r"ToyConfig.rate must be > 0.0"):
        ToyConfig(rate=0.0)
    with pytest.raises(ConfigError, match=r"ToyConfig.width must be an integer, got 2.5"):
        ToyConfig(width=2.5)
    with pytest.raises(ConfigError, match=r"ToyConfig.width must be an integer, got True"):
        ToyConfig(width=True)
    with pytest.raises(ConfigError, match=r"ToyConfig.verbose must be true or false"):
        ToyConfig(verbose="yes")
    with pytest.raises(ConfigError, match=r"ToyConfig.names must name at least one"):
        ToyConfig(names=())
    assert ToyConfig(width=3.0).width == 3 and isinstance(ToyConfig(width=3.0).width, int)


def test_json_round_trip_with_format_and_version(tmp_path):
    cfg = ToyConfig(width=8, mode="fast", names=["a"], seed=3)
    path = cfg.save(tmp_path / "toy.json")
    raw = json.loads(path.read_text())
    assert raw["format"] == "toy_config" and raw["format_version"] == 1 and raw["names"] == ["a"]
    assert ToyConfig.load(path) == cfg


def test_unknown_keys_wrong_format_and_newer_versions_are_refused(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"format": "toy_config", "format_version": 1, "widht": 3}))
    with pytest.raises(ConfigError, match=r"toy.json: unknown ToyConfig fields \['widht'\]"):
        ToyConfig.load(path)
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not a toy_config file"):
        ToyConfig.load(path)
    path.write_text(json.dumps({"format": "toy_config", "format_version": 2}))
    with pytest.raises(ConfigError, match="newer than this library reads"):
        ToyConfig.load(path)
    path.write_text(json.dumps({"format": "toy_config", "mode": "slow"}))
    with pytest.raises(ConfigError, match=r"toy.json: ToyConfig.mode must be one of"):
        ToyConfig.load(path)


def _parser():
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_arguments(parser, ToyConfig)
    return parser


def test_cli_is_generated_from_the_fields():
    parser = _parser()
    text = parser.format_help()
    assert "--width WIDTH" in text and "hidden width (default: 64)" in text
    assert "{fast,exact}" in text and "--verbose, --no-verbose" in text
    args = parser.parse_args(["--mode", "fast", "--names", "a", "b", "--verbose", "--seed", "4"])
    cfg = config_from_args(ToyConfig, args)
    assert cfg == ToyConfig(mode="fast", names=("a", "b"), verbose=True, seed=4)
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["--mode", "slow"])


def test_only_typed_flags_override_the_base_and_errors_name_the_flag():
    base = ToyConfig(width=16, mode="fast")
    assert config_from_args(ToyConfig, _parser().parse_args(["--rate", "0.25"]), base=base) == ToyConfig(
        width=16, mode="fast", rate=0.25
    )
    with pytest.raises(ConfigError, match=r"^--width must be >= 1, got 0$"):
        config_from_args(ToyConfig, _parser().parse_args([]), width=0)


def test_numpy_scalars_sequences_strings_and_non_finite_numbers():
    cfg = ToyConfig(width=np.int64(5), rate=np.float32(0.5), verbose=np.bool_(True), names=["a", "b"])
    assert type(cfg.width) is int and type(cfg.rate) is float and cfg.verbose is True and cfg.names == ("a", "b")
    with pytest.raises(ConfigError, match=r"ToyConfig.names must be a sequence, got the string 'long'"):
        ToyConfig(names="long")
    with pytest.raises(ConfigError, match=r"ToyConfig.names items must be str, got 3"):
        ToyConfig(names=("a", 3))
    with pytest.raises(ConfigError, match=r"ToyConfig.rate must be a finite number, got nan"):
        ToyConfig(rate=float("nan"))
    with pytest.raises(ConfigError, match=r"ToyConfig.width must be an integer, got inf"):
        ToyConfig(width=float("inf"))


@dataclass
class LabelConfig(ConfigBase):
    label: str = setting("x", "a label")
    share: float = setting(0.0, "a share in [0, 1)", minimum=0.0, maximum=1.0, exclusive_maximum=True)
    topk: int | None = setting(None, "k of the head's top-k", flag="--topk-head")
    on: bool = setting(False, "switch", flag="--switch")

    def validate(self) -> None:
        if self.topk is not None and not self.on:
            self.fail("topk", f"needs {self.ref('on')}")


def test_string_fields_and_exclusive_maximum():
    with pytest.raises(ConfigError, match=r"LabelConfig.label must be a string, got 3"):
        LabelConfig(label=3)
    with pytest.raises(ConfigError, match=r"LabelConfig.share must be < 1.0, got 1.0"):
        LabelConfig(share=1.0)


def test_configs_whose_fields_share_a_name_share_a_parser_through_their_flags():
    """ToyConfig has no topk; give it one named like LabelConfig's: each reads its own flag."""

    @dataclass
    class CutoffConfig(ConfigBase):
        topk: tuple[int, ...] = setting((5, 10), "cut-offs")

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_arguments(parser, CutoffConfig)
    add_config_arguments(parser, LabelConfig)
    args = parser.parse_args(["--topk-head", "3", "--switch"])
    assert args.topk_head == 3 and args.switch is True and not hasattr(args, "topk")
    assert config_from_args(CutoffConfig, args).topk == (5, 10)
    assert config_from_args(LabelConfig, args) == LabelConfig(topk=3, on=True)
    assert flag_settings(LabelConfig, args) == {"label": "x", "share": 0.0, "topk_head": 3, "switch": True}
    assert flag_settings(config_from_args(LabelConfig, args), skip=["label"]) == {
        "share": 0.0,
        "topk_head": 3,
        "switch": True,
    }
    assert flag_settings(CutoffConfig(topk=[1, 2])) == {"topk": [1, 2]}
    args = parser.parse_args(["--topk", "20"])
    assert config_from_args(CutoffConfig, args).topk == (20,) and config_from_args(LabelConfig, args).topk is None


def test_cross_field_messages_name_both_flags():
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_arguments(parser, LabelConfig)
    with pytest.raises(ConfigError, match=r"^--topk-head needs --switch$"):
        config_from_args(LabelConfig, parser.parse_args(["--topk-head", "3"]))
    with pytest.raises(ConfigError, match=r"^LabelConfig.topk needs LabelConfig.on$"):
        LabelConfig(topk=3)


def test_fields_without_a_default_are_required_flags(capsys):
    @dataclass
    class PathConfig(ConfigBase):
        data: str = setting(help="input folder")
        name: str = setting("x", "a name")

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_arguments(parser, PathConfig)
    assert config_from_args(PathConfig, parser.parse_args(["--data", "d"])) == PathConfig(data="d")
    with pytest.raises(SystemExit):
        parser.parse_args(["--name", "y"])
    assert "required: --data" in capsys.readouterr().err


def test_bounds_are_checked_while_parsing_and_name_the_flag():
    with pytest.raises(argparse.ArgumentError, match=r"argument --width: must be >= 1, got 0"):
        _parser().parse_args(["--width", "0"])
    with pytest.raises(argparse.ArgumentError, match=r"argument --rate: must be a finite number, got nan"):
        _parser().parse_args(["--rate", "nan"])
    with pytest.raises(argparse.ArgumentError, match=r"argument --width: expected an integer, got 'many'"):
        _parser().parse_args(["--width", "many"])
    with pytest.raises(ConfigError, match=r"ToyConfig.rate must be > 0.0, got 0.0"):
        ToyConfig(rate=0.0)


@dataclass(frozen=True)
class Inner:
    depth: int = setting(2, "search depth", minimum=1)
    label: str = setting("x", "a label", cli=False)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class OuterConfig(ConfigBase):
    FORMAT: ClassVar[str] = "outer_config"
    inner: Inner = setting(default_factory=Inner, help="nested settings")
    span: tuple[int, int] | None = setting(None, "K/N", parse=lambda t: tuple(int(v) for v in t.split("/")))
    where: str | None = setting(None, "a path", group="paths")


def test_nested_settings_parse_hooks_groups_and_paths(tmp_path):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_arguments(parser, OuterConfig)
    assert "paths:" in parser.format_help() and "--label" not in parser.format_help()
    args = parser.parse_args(["--depth", "5", "--span", "1/4", "--where", "w"])
    cfg = config_from_args(OuterConfig, args)
    assert cfg.inner == Inner(depth=5) and cfg.span == (1, 4) and cfg.where == "w"
    with pytest.raises(argparse.ArgumentError, match="argument --span"):
        parser.parse_args(["--span", "x"])
    with pytest.raises(argparse.ArgumentError, match="argument --depth: must be >= 1"):
        parser.parse_args(["--depth", "0"])
    with pytest.raises(ConfigError, match=r"Inner.depth must be >= 1, got 0"):
        Inner(depth=0)
    assert OuterConfig(where=tmp_path).where == str(tmp_path)  # a path given to a str field is kept as text
    assert OuterConfig(span="2/5").span == (2, 5)  # text given from Python is parsed as on the command line
    with pytest.raises(ConfigError, match=r"OuterConfig.span invalid literal"):
        OuterConfig(span="a/b")
    loaded = OuterConfig.load(OuterConfig(inner=Inner(depth=3, label="y")).save(tmp_path / "o.json"))
    assert loaded.inner == Inner(depth=3, label="y")


def test_unknown_replace_names_suggest_the_close_one():
    with pytest.raises(ConfigError, match=r"unknown ToyConfig settings \['widht'\] \(did you mean 'width'\?\)"):
        ToyConfig().replace(widht=3)
