import pytest

from maskvit.config import (
    Config,
    DecodingConfig,
    EvalConfig,
    TransformerConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    diff_configs,
    load_config,
    load_preset,
    preset_names,
    save_config,
)
from maskvit.errors import UserError

TABLE4 = {
    # preset: (context, vq channels, vq batch, vq steps, vq lr, disc start,
    #          st window, blocks, heads, dim, ff, batch, lr, steps, schedule, iters, temp)
    "bair64": (1, 160, 320, 300000, 1e-4, None, (16, 8, 8), 6, 4, 768, 3072, 64, 3e-4, 100000,
               "square", 18, 4.5),
    "kitti64": (5, 128, 1120, 50000, 1e-3, 20000, (0, 4, 4), 8, 4, 768, 3072, 32, 3e-4, 100000,
                "cosine", 48, 3.0),
    "kitti256": (5, 128, 112, 300000, 1e-4, 150000, (0, 4, 4), 6, 4, 1024, 4096, 32, 3e-4,
                 100000, "cosine", 64, 4.5),
    "robonet64": (2, 192, 720, 300000, 5e-4, None, (0, 4, 4), 8, 4, 768, 3072, 224, 3e-4,
                  300000, "cosine", 7, None),
    "robonet256": (2, 128, 112, 300000, 1e-4, 150000, (0, 4, 4), 6, 4, 1024, 4096, 224, 3e-4,
                   300000, "cosine", 16, None),
}


def test_all_presets_ship():
    assert set(preset_names()) >= set(TABLE4) | {"push64"}


@pytest.mark.parametrize("name", sorted(TABLE4))
def test_paper_presets_hold_table_4_values(name):
    c = load_preset(name)
    row = (
        c.transformer.context_frames, c.tokenizer.channels, c.tokenizer_train.batch_size,
        c.tokenizer_train.steps, c.tokenizer_train.lr, c.tokenizer.disc_start,
        c.transformer.spatiotemporal_window, c.transformer.depth, c.transformer.heads,
        c.transformer.dim, c.transformer.mlp_dim, c.train.batch_size, c.train.lr, c.train.steps,
        c.eval.decoding.schedule, c.eval.decoding.steps, c.eval.decoding.temperature,
    )
    assert row == TABLE4[name]
    assert c.tokenizer.codebook_size == 1024 and c.tokenizer.code_dim == 256
    assert c.tokenizer.token_grid == 16 and c.transformer.spatial_window == (1, 16, 16)
    assert c.transformer.dropout == 0.0


def test_dotted_override_changes_one_field():
    c = load_preset("push64", ["transformer.depth=2", "eval.decoding.temperature=null"])
    assert c.transformer.depth == 2 and c.eval.decoding.temperature is None
    # planning decodes with eval's temperature unless plan.decoding sets its own
    assert diff_configs(c, load_preset("push64")) == [
        "eval.decoding.temperature", "plan.decoding.temperature", "transformer.depth"]


def test_numbers_in_exponent_form_are_numbers(tmp_path):
    """YAML 1.1 reads `3e-3` (no dot) as a string; a user means 0.003, on the CLI and in a file."""
    c = load_preset("push64", ["train.lr=3e-3", "train.steps=1e3", "train.warmup_steps=4E1"])
    assert (c.train.lr, c.train.steps, c.train.warmup_steps) == (0.003, 1000, 40)
    path = tmp_path / "config.yaml"
    save_config(c, path)
    path.write_text(path.read_text().replace("lr: 0.003", "lr: 3e-3"))
    assert "lr: 3e-3" in path.read_text() and load_config(path).train.lr == 0.003
    with pytest.raises(UserError, match="train.steps must be an integer"):
        load_preset("push64", ["train.steps=1.5e0"])
    with pytest.raises(UserError, match="train.lr must be a number"):
        load_preset("push64", ["train.lr=nan"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("transformer.dpth=2", "unknown key 'dpth' in transformer; valid keys: num_frames"),
        ("nope.depth=2", "unknown key 'nope' in config"),
        ("transformer.depth=four", "transformer.depth must be an integer"),
        ("transformer.depth=2.5", "transformer.depth must be an integer"),
        ("eval.decoding.schedule=zigzag", "eval.decoding.schedule must be one of cosine"),
        ("eval.schedule=zigzag", "eval.decoding.schedule must be one of cosine"),
        ("transformer.spatial_window=[1,2]", "must have 3 entries"),
        ("depth", "must look like section.key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(UserError) as err:
        load_preset("push64", [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(UserError, match="choose one of: bair64"):
        load_preset("bair65")


def test_saved_config_loads_back_equal(tmp_path):
    c = load_preset("robonet64", ["train.mask_ratio=0.9"])
    save_config(c, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == c


def test_yaml_with_unknown_section_is_rejected():
    with pytest.raises(UserError, match="unknown key 'extra'"):
        config_from_dict({"extra": {}})


@pytest.mark.parametrize("name", sorted(preset_names()))
def test_every_preset_passes_the_range_checks(name):
    from maskvit.config import check_protocol, validate

    config = load_preset(name)
    validate(config)
    check_protocol(config)


def test_shipped_reference_configs_pass_the_range_checks():
    from maskvit.pretrained import DEFAULT_MODEL, PRETRAINED_ROOT, pretrained_path

    root = pretrained_path()
    # The bundle is part of the package (pyproject's package data): its absence is a fault.
    assert root is not None, f"the shipped bundle {PRETRAINED_ROOT / DEFAULT_MODEL} is missing"
    for part in ("tokenizer", "transformer"):
        load_config(root / part / "config.yaml")


def test_saved_run_with_odd_eval_defaults_still_loads_but_overrides_are_checked(tmp_path):
    # A run whose eval defaults do not fit its clips (made in code, as a test bundle is):
    # its weights must still load; changing eval/transformer settings is checked.
    config = Config(transformer=TransformerConfig(num_frames=6, context_frames=2),
                    eval=EvalConfig(context_frames=1, predicted_frames=15))
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    apply_overrides(config, ["plan.horizon=4"])  # plan fits: fine
    with pytest.raises(UserError, match="eval.predicted_frames to at most 5"):
        apply_overrides(config, ["eval.trials=3"])
    with pytest.raises(UserError, match="plan.horizon 5 too long"):
        apply_overrides(config, ["plan.horizon=5"])


def test_damaged_saved_config_is_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text("train: {batch_size: [\n")
    with pytest.raises(UserError) as err:
        load_config(tmp_path / "config.yaml")
    assert "is damaged" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "config.yaml").write_text("train: {batch_size: -3}\n")
    with pytest.raises(UserError, match="train.batch_size must be an integer >= 1; got -3"):
        load_config(tmp_path / "config.yaml")


def test_old_flat_decoding_keys_map_into_the_nested_decoding_config(tmp_path):
    c = load_preset("push64", ["eval.decoding_steps=4", "eval.top_p=0.9", "plan.schedule=square"])
    assert c.eval.decoding == DecodingConfig(steps=4, schedule="cosine", temperature=4.5, top_p=0.9)
    assert (c.plan.decoding.steps, c.plan.decoding.schedule) == (2, "square")  # push64 plans in 2 steps
    # a run directory of the earlier layout (the shipped bundle's) reads the same way
    old = config_to_dict(load_preset("push64"))
    for section in ("eval", "plan"):
        decoding = old[section].pop("decoding")
        old[section].update(decoding_steps=decoding["steps"], schedule=decoding["schedule"])
    old["eval"].update(temperature=None, top_p=0.5)
    c = config_from_dict(old)
    assert c.eval.decoding.temperature is None and c.plan.decoding.top_p == 0.5
    old["eval"]["decoding"] = {"steps": 3}
    with pytest.raises(UserError, match="old spelling of eval.decoding.steps"):
        config_from_dict(old)


def test_repeated_facts_are_derived_and_checked_once():
    c = load_preset("push64", ["tokenizer.codebook_size=256", "tokenizer.downsample=4"])
    assert (c.transformer.codebook_size, c.transformer.tokens_h, c.transformer.tokens_w) == (256, 16, 16)
    assert (c.data.resolution, c.data.action_dim) == (64, 2)
    assert (c.eval.context_frames, c.eval.predicted_frames) == (2, 10)
    c = load_preset("push64", ["transformer.num_frames=8", "plan.horizon=6"])
    assert c.eval.predicted_frames == 6
    with pytest.raises(UserError, match="transformer.codebook_size = 100 disagrees with "
                                        "tokenizer.codebook_size = 512"):
        load_preset("push64", ["transformer.codebook_size=100"])
    with pytest.raises(UserError, match="data.action_dim = 3 disagrees"):
        load_preset("push64", ["data.action_dim=3"])
