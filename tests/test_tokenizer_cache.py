"""train-tokenizer → tokenize → reconstruct, end to end on a tiny synthetic store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from maskvit.cli import main
from maskvit.data import EpisodeStore, EpisodeStoreWriter, TokenCache, TokenCacheWriter
from maskvit.errors import UserError
from maskvit.tokenizer import VQGAN
from maskvit.tokenizer.cache import tokenize_store

TINY = [
    "tokenizer.resolution=16", "tokenizer.downsample=4", "tokenizer.channels=8",
    "tokenizer.num_res_blocks=1", "tokenizer.codebook_size=32", "tokenizer.code_dim=8",
    "tokenizer_train.batch_size=4", "tokenizer_train.steps=4", "tokenizer_train.warmup_steps=0",
    "tokenizer_train.checkpoint_every=2", "tokenizer_train.val_every=0",
    "tokenizer_train.precision=fp32",
    # The preset's LPIPS + GAN recipe is covered in test_tokenizer_losses; here it would
    # only cost time (a VGG16 per step).
    "tokenizer.perceptual_weight=0.0", "tokenizer.disc_start=null",
]


def write_store(path, lengths=(5, 3, 7, 4, 6)) -> EpisodeStore:
    """Episodes of different lengths whose actions encode (episode, frame)."""
    rng = np.random.default_rng(0)
    splits = ["train", "train", "val", "test", "train"]
    with EpisodeStoreWriter(path, source="synthetic", action_dim=2, resolution=16) as w:
        for e, n in enumerate(lengths):
            frames = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
            actions = np.stack([np.full(n, e), np.arange(n)], axis=1).astype(np.float32)
            w.add(f"ep{e}", frames, actions, split=splits[e])
    return EpisodeStore.open(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    store = write_store(root / "data")
    run = root / "run"
    args = ["--preset", "push64", "--data", str(root / "data"), "--out", str(run), "--no-progress"]
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["train-tokenizer", *args, *sets, "--max-steps", "2"]) == 0
    assert main(["train-tokenizer", "--data", str(root / "data"), "--out", str(run),
                 "--resume", "--no-progress"]) == 0
    return root, store, run


def test_resumed_training_matches_an_uninterrupted_run_exactly(trained):
    root, store, run = trained
    straight = root / "straight"
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["train-tokenizer", "--preset", "push64", "--data", str(root / "data"),
                 "--out", str(straight), "--no-progress", *sets]) == 0
    a = load_file(str(run / "checkpoints" / "step_00000004" / "vqgan.safetensors"))
    b = load_file(str(straight / "checkpoints" / "step_00000004" / "vqgan.safetensors"))
    assert a.keys() == b.keys()
    for key in a:  # weights, codebook and the usage statistics behind restarts
        assert torch.equal(a[key], b[key]), key


def test_training_resumes_and_the_run_loads_back(trained):
    root, store, run = trained
    vqgan = VQGAN.from_run(run)
    assert vqgan.cfg.resolution == 16 and not vqgan.training
    assert (run / "checkpoints" / "step_00000004" / "vqgan.safetensors").is_file()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert any('"psnr"' in line and '"perplexity"' in line for line in lines)


def test_tokenize_then_decode_reproduces_the_tokenizers_reconstructions(trained):
    root, store, run = trained
    assert main(["tokenize", "--tokenizer", str(run), "--data", str(root / "data"),
                 "--out", str(root / "tokens"), "--batch-size", "4", "--no-progress"]) == 0
    cache = TokenCache.open(root / "tokens")
    vqgan = VQGAN.from_run(run)
    assert cache.episode_ids() == store.episode_ids() and cache.token_shape == (4, 4)
    for split in ("train", "val", "test"):
        assert cache.episode_ids(split) == store.episode_ids(split)
    for episode_id in store.episode_ids():
        episode = store.load(episode_id)
        codes = torch.from_numpy(cache.codes(episode_id).astype(np.int64))
        assert cache.length(episode_id) == len(episode["frames"])  # boundaries line up
        np.testing.assert_array_equal(cache.actions(episode_id), episode["actions"])
        assert torch.equal(codes, vqgan.encode(episode["frames"]))
        assert torch.equal(vqgan.decode(codes), vqgan.reconstruct(episode["frames"]))


def test_tokenize_resumes_an_interrupted_cache(trained, tmp_path):
    root, store, run = trained
    vqgan = VQGAN.from_run(run)
    out = tmp_path / "tokens"
    first = store.episode_ids()[0]
    partial = TokenCacheWriter(out, token_shape=(4, 4), action_dim=2, codebook_size=32,
                               extra={"tokenizer_fingerprint": vqgan.fingerprint()})
    partial.add(first, np.zeros((store.length(first), 4, 4), np.int64), store.load(first)["actions"],
                split=store.split_of(first))
    partial._codes.close(), partial._actions.close(), partial._index.close()  # "killed" here
    cache = tokenize_store(vqgan, store, out, batch_size=3, progress=False)
    assert cache.episode_ids() == store.episode_ids()
    assert not cache.codes(first).any()  # kept from the first run, not encoded again
    second = store.episode_ids()[1]
    assert torch.equal(torch.from_numpy(cache.codes(second).astype(np.int64)),
                       vqgan.encode(store.load(second)["frames"]))


def test_tokenize_refuses_to_mix_codes_of_another_tokenizer(trained, tmp_path):
    root, store, run = trained
    vqgan = VQGAN.from_run(run)
    tokenize_store(vqgan, store, tmp_path / "tokens", progress=False)
    with torch.no_grad():
        vqgan.decoder.conv_out.bias.add_(1.0)  # "another checkpoint"
    with pytest.raises(UserError, match="another tokenizer"):
        tokenize_store(vqgan, store, tmp_path / "tokens", progress=False)
    assert tokenize_store(vqgan, store, tmp_path / "tokens", overwrite=True, progress=False)


def test_reconstruct_writes_gifs_and_a_png(trained, capsys):
    root, store, run = trained
    out = root / "recon"
    assert main(["reconstruct", "--tokenizer", str(run), "--data", str(root / "data"),
                 "--out", str(out), "--split", "train", "--episodes", "2", "--frames", "3",
                 "--no-progress"]) == 0
    shown = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # not the marker
    assert shown == ["ep0.gif", "ep1.gif", "metrics.json", "reconstructions.png"]
    from PIL import Image

    png = np.asarray(Image.open(out / "reconstructions.png"))
    gif = Image.open(out / "ep0.gif")
    assert gif.n_frames == store.length("ep0") and gif.size == (2 * (2 * 16 + 2), 2 * 16)
    # 2 episodes × (input + reconstruction) rows of 16 px and one 4 px gap, ×2 upscaling
    assert png.shape == (2 * (4 * 16 + 4), 2 * (3 * 16 + 2 * 2), 3)
    assert "PSNR" in capsys.readouterr().out


def test_user_errors_are_one_line(trained, tmp_path):
    root, store, run = trained
    with pytest.raises(UserError, match="frames but the tokenizer"):
        other = tmp_path / "big"
        with EpisodeStoreWriter(other, source="s", action_dim=2, resolution=32) as w:
            w.add("a", np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 2), np.float32))
        tokenize_store(VQGAN.from_run(run), EpisodeStore.open(other), tmp_path / "t")
    assert main(["tokenize", "--tokenizer", str(tmp_path / "nope"), "--data",
                 str(root / "data")]) == 2
