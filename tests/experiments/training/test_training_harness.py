"""The training harness's settings: TrainConfig, flags generated from the configs, the run's settings record."""

import json
import pickle
import random
import shlex

import pytest
import torch

from llm4sbr_adapter.config import ConfigError
from llm4sbr_adapter.experiments.models.backbones import BACKBONES
from llm4sbr_adapter.experiments.models.recommender import Session
from llm4sbr_adapter.experiments.training import hiphop_srgnn, train
from llm4sbr_adapter.experiments.training.loop import TrainConfig, fit_and_evaluate, load_run_data
from llm4sbr_adapter.hiphop import HiphopConfig


def _write_dataset(folder, num_items=12):
    """Three SR-GNN pickles of short random sessions over ``num_items`` items."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (split, rows) in enumerate((("train", 60), ("valid", 20), ("test", 25))):
        rng = random.Random(seed)
        seqs = [[rng.randint(1, num_items) for _ in range(rng.randint(1, 5))] for _ in range(rows)]
        targets = [rng.randint(1, num_items) for _ in range(rows)]
        with open(folder / f"{split}.txt", "wb") as handle:
            pickle.dump((seqs, targets), handle)


# The "config" keys of result files written before the flags were generated (runs in /work/runs have them).
TRAIN_KEYS_BEFORE = shlex.split(
    "aux_weight batch_size data device enhancer epochs fusion gnn_steps hidden_size l2 lr lr_gamma lr_step max_len "
    "model out patience perspectives seed select_metric store_test store_train store_valid threads topk"
)
HIPHOP_KEYS_BEFORE = shlex.split(
    "attention_scale aux_weight bank_index bank_nprobe batch_size contrastive contrastive_weight data device "
    "diversity_weight encoder_cache enhancer epochs gnn_steps group_by_user hard_negatives hidden_size init_method "
    "intents l2 local_last_n lr lr_gamma lr_step max_len neighbours normaliser num_hard_negatives num_heads "
    "num_intents out patience projection seed select_metric semantic store_test store_train store_valid temperature "
    "threads title_batch_size title_encoder top_m topk topk_attention"
)


def test_train_config_checks_its_settings():
    assert TrainConfig(data="d", out="o").topk == (5, 10, 20)
    with pytest.raises(
        ConfigError, match=r"TrainConfig.select_metric must be HR\|MRR\|NDCG@K with K in TrainConfig.topk"
    ):
        TrainConfig(data="d", out="o", select_metric="MRR@7")
    with pytest.raises(ConfigError, match=r"TrainConfig.topk must be one or more positive cut-offs"):
        TrainConfig(data="d", out="o", topk=(0, 20))
    with pytest.raises(ConfigError, match=r"TrainConfig.lr must be > 0.0"):
        TrainConfig(data="d", out="o", lr=0)


def test_every_earlier_hiphop_flag_spelling_lands_in_its_config(tmp_path):
    argv = shlex.split(
        "--data d --out o --epochs 2 --patience 1 --seed 3 --batch-size 8 --hidden-size 16 --lr 0.01 --lr-step 2 "
        "--lr-gamma 0.5 --l2 0 --gnn-steps 2 --max-len 9 --topk 5 20 --select-metric HR@5 --threads 2 --device cpu "
        "--semantic add --init-method random --projection mlp --title-encoder default --title-batch-size 8 "
        "--encoder-cache c --intents --num-intents 3 --num-heads 2 --diversity-weight 0.1 --neighbours --top-m 4 "
        "--local-last-n 2 --bank-index ivf --bank-nprobe 4 --normaliser topk --attention-scale 2 --topk-attention 3 "
        "--group-by-user --contrastive --contrastive-weight 0.2 --temperature 0.3 --hard-negatives bank "
        "--num-hard-negatives 2 --enhancer --store-train a --store-valid b --store-test c --aux-weight 0.3 --quiet"
    )
    args = hiphop_srgnn.parse_args(argv)
    cfg = train.train_config(args)
    assert (cfg.epochs, cfg.batch_size, cfg.hidden_size, cfg.topk, cfg.select_metric) == (2, 8, 16, (5, 20), "HR@5")
    head = hiphop_srgnn.head_config(args)
    assert head == HiphopConfig(
        hidden_size=16,
        num_intents=3,
        num_heads=2,
        diversity_weight=0.1,
        top_m=4,
        local_last_n=2,
        bank_index="ivf",
        bank_nprobe=4,
        normaliser="topk",
        attention_scale=2.0,
        topk=3,  # --topk-attention, not --topk
        contrastive_weight=0.2,
        temperature=0.3,
        hard_negatives="bank",
        num_hard_negatives=2,
    )
    titles = hiphop_srgnn.title_config(args)
    assert (titles.semantic, titles.init_method, titles.projection, titles.encoder_cache) == (
        "add",
        "random",
        "mlp",
        "c",
    )
    assert args.group_by_user and args.enhancer and args.aux_weight == 0.3 and args.store_test == "c"
    plain = hiphop_srgnn.head_config(hiphop_srgnn.parse_args(["--data", "d", "--out", "o"]))
    assert not (plain.use_intents or plain.use_neighbours or plain.use_contrastive)  # the harness starts plain


def test_a_bad_setting_is_a_one_line_usage_error_naming_the_flags(capsys):
    with pytest.raises(SystemExit) as stop:
        hiphop_srgnn.parse_args(["--data", "d", "--out", "o", "--contrastive"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err
    assert err.startswith("error: --contrastive needs --neighbours")
    for argv, flags in (
        (["--select-metric", "HR@7"], ("--select-metric", "--topk")),
        (["--lr", "0"], ("--lr",)),
        (["--model", "narm", "--topk", "5", "--select-metric", "MRR@20"], ("--select-metric", "--topk")),
    ):
        with pytest.raises(SystemExit):
            train.parse_args(["--data", "d", "--out", "o", *argv])
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and all(f in err for f in flags), err


def test_fit_and_evaluate_takes_a_train_config_and_records_it(tmp_path):
    _write_dataset(tmp_path / "data")
    config = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run.json"), epochs=2, hidden_size=8)
    _, data, num_items = load_run_data(config)
    model = Session(BACKBONES["stamp"](num_items, config.hidden_size))
    result = fit_and_evaluate(model, data, config)
    assert result["config"] == json.loads(json.dumps(config.to_dict())) and result["epochs_run"] == 2
    assert json.loads((tmp_path / "run.json").read_text())["test"] == result["test"]
    assert TrainConfig.from_dict(result["config"]) == config  # a run's settings rebuild its config


def test_result_files_keep_the_earlier_config_keys(tmp_path):
    _write_dataset(tmp_path / "data")
    common = ["--data", str(tmp_path / "data"), "--epochs", "1", "--hidden-size", "8", "--quiet"]
    torch.manual_seed(0)
    train.main([*common, "--model", "stamp", "--out", str(tmp_path / "t.json")])
    hiphop_srgnn.main([*common, "--out", str(tmp_path / "h.json")])
    t = json.loads((tmp_path / "t.json").read_text())["config"]
    h = json.loads((tmp_path / "h.json").read_text())["config"]
    assert set(TRAIN_KEYS_BEFORE) <= set(t) and set(HIPHOP_KEYS_BEFORE) <= set(h)
    assert t["topk"] == [5, 10, 20] and t["aux_weight"] == 0.1 and t["perspectives"] is None
    assert h["intents"] is False and h["topk_attention"] is None and h["topk"] == [5, 10, 20]


def test_hiphop_model_refuses_a_head_of_another_width(tmp_path):
    train_cfg = TrainConfig(data=str(tmp_path), out="o", hidden_size=8)
    with pytest.raises(ValueError, match="HiphopConfig.hidden_size 16 differs from TrainConfig.hidden_size 8"):
        hiphop_srgnn.HiphopRecommender(
            train_cfg, HiphopConfig(hidden_size=16), hiphop_srgnn.TitleConfig(), 12, tmp_path
        )


class _PrefixLover:
    """A fake recommender: each prefix's own items score 2, item 7 scores 1, all others 0."""

    needs_graph = False

    def __init__(self, num_items: int) -> None:
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.num_items = num_items

    def parameters(self):
        return [self.weight]

    def train(self, mode: bool = True) -> None:
        pass

    def use_split(self, split: str) -> None:
        pass

    def loss_and_scores(self, batch, training):
        scores = torch.zeros(len(batch.targets), self.num_items) + self.weight
        scores[:, 6] += 1.0
        rows = torch.arange(len(batch.targets)).unsqueeze(1).expand_as(batch.items)
        real = batch.items > 0
        scores[rows[real], batch.items[real] - 1] = 2.0
        ce = torch.nn.functional.cross_entropy(scores, batch.targets - 1)
        return ce, torch.zeros(()), scores

    def state(self):
        return {"weight": self.weight.detach().clone()}

    def load_state(self, state):
        with torch.no_grad():
            self.weight.copy_(state["weight"])


@pytest.mark.parametrize(("rule", "last"), [("never", False), ("choose", True)])
def test_ranking_the_prefix_last_is_chosen_on_validation(tmp_path, rule, last):
    folder = tmp_path / "data"
    folder.mkdir()
    # every target is item 7 and never in its prefix
    for split, seqs in (("train", [[1, 2]]), ("valid", [[1, 2], [3, 3, 4, 5]]), ("test", [[2, 4, 6]])):
        with open(folder / f"{split}.txt", "wb") as handle:
            pickle.dump((seqs, [7] * len(seqs)), handle)
    config = TrainConfig(data=str(folder), out=str(tmp_path / "r.json"), epochs=1, exclude_seen=rule)
    _, data, num_items = load_run_data(config)
    result = fit_and_evaluate(_PrefixLover(num_items), data, config)
    assert result["prefix_items_last"] is last
    # kept: the target ranks behind the prefix's distinct items: valid ranks 3 and 4 (MRR 7/24), test rank 4
    # prefix last: item 7 is first everywhere (MRR 1)
    assert result["valid_at_best"]["MRR@20"] == pytest.approx(1.0 if last else (1 / 3 + 1 / 4) / 2)
    assert result["test"]["MRR@20"] == pytest.approx(1.0 if last else 1 / 4)
    assert ("valid_prefix_last" in result["log"][0]) is last
