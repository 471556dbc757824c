"""LaSeR's maths against hand-computed values on tiny tensors."""

import math

import pytest
import torch

from laser import selfreward as sr
from laser.metrics import self_verification


def test_self_reward():
    logp = torch.tensor([-23.0, -18.0, -28.0])
    assert torch.allclose(sr.self_reward(logp, 0.1, -23.0), torch.tensor([0.0, 0.5, -0.5]))
    ref = torch.tensor([-20.0, -20.0, -30.0])  # reference-forward mode: per-sample c_ref
    assert torch.allclose(sr.self_reward(logp, 0.1, ref), torch.tensor([-0.3, 0.2, 0.2]))


def test_class_weights_balanced():
    # 1 correct, 3 incorrect finished, 1 truncated correct: N = 4, w_c = 4/2 = 2, w_i = 4/6
    r_v = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0])
    finished = torch.tensor([True, True, True, True, False])
    w, n_c, n_i, w_c, w_i = sr.class_weights(r_v, finished)
    assert (n_c, n_i) == (1, 3)
    assert w_c == 2.0 and w_i == pytest.approx(2 / 3)
    assert torch.allclose(w, torch.tensor([2.0, 2 / 3, 2 / 3, 2 / 3, 0.0]))
    # the two classes carry equal total weight
    assert w[r_v == 1].sum() == pytest.approx(w[(r_v == 0)].sum())


@pytest.mark.parametrize("r_v", [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
def test_class_weights_one_class_only(r_v):
    r_v = torch.tensor(r_v)
    w, n_c, n_i, w_c, w_i = sr.class_weights(r_v, torch.ones(3, dtype=torch.bool))
    # the present class gets N / (2 N) = 0.5, the empty one 0
    assert torch.allclose(w, torch.full((3,), 0.5))
    assert (w_c, w_i) == ((0.5, 0.0) if n_c else (0.0, 0.5))


def test_class_weights_nothing_finished_and_unbalanced():
    w, n_c, n_i, *_ = sr.class_weights(torch.tensor([1.0, 0.0]), torch.tensor([False, False]))
    assert (n_c, n_i) == (0, 0) and torch.equal(w, torch.zeros(2))
    w, *_ = sr.class_weights(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([True, True, False]), balanced=False)
    assert torch.equal(w, torch.tensor([1.0, 1.0, 0.0]))


def test_sr_loss_mse_by_hand():
    r_s = torch.tensor([0.8, 0.3, 0.1, 0.5])
    r_v = torch.tensor([1.0, 0.0, 0.0, 1.0])
    finished = torch.tensor([True, True, True, False])
    w, n_c, n_i, *_ = sr.class_weights(r_v, finished)  # N=3, w_c=1.5, w_i=0.75
    loss = sr.sr_loss(torch.zeros(4), r_s, r_v, w, n_c + n_i)
    expected = (1.5 * 0.2**2 + 0.75 * 0.3**2 + 0.75 * 0.1**2) / 3
    assert loss.item() == pytest.approx(expected)
    # split into micro-batches with the whole step's normaliser: the parts add up
    parts = sum(sr.sr_loss(torch.zeros(2), r_s[i:i + 2], r_v[i:i + 2], w[i:i + 2], n_c + n_i) for i in (0, 2))
    assert parts.item() == pytest.approx(expected)


def test_sft_ablation_by_hand():
    """The official SFT ablation: cross-entropy of z_c after correct solutions, of z_c + 1 after
    incorrect ones; judged by p(z_c) > 0.5."""
    r_v = torch.tensor([1.0, 0.0, 0.0])
    assert sr.sft_tokens(259, r_v).tolist() == [259, 260, 260]
    logp_target = torch.log(torch.tensor([0.9, 0.2, 0.6]))
    loss = sr.per_sample_sr_loss(logp_target, torch.zeros(3), r_v, "sft")
    assert torch.allclose(loss, torch.tensor([-math.log(0.9), -math.log(0.2), -math.log(0.6)]), atol=1e-6)
    logp_zc = torch.log(torch.tensor([0.7, 0.3]))
    assert torch.allclose(sr.score(logp_zc, "sft", 0.1, -5.0), torch.tensor([0.7, 0.3]))
    assert torch.allclose(sr.score(logp_zc, "mse", 0.1, -5.0), 0.1 * (logp_zc + 5.0))
    with pytest.raises(ValueError, match="unknown self-rewarding loss"):
        sr.per_sample_sr_loss(logp_target, logp_target, logp_target, "hinge")


def test_swa_mix_and_fallback_by_hand():
    # two groups of 3. Group 1: r_s clamps to [1, 0, 0.5] -> mean 0.5, std 0.5 -> A_s = [1, -1, 0]
    # group 2: r_s all 0.2 -> std 0 <= T -> fall back to A_v
    r_s = torch.tensor([1.7, -0.4, 0.5, 0.2, 0.2, 0.2])
    finished = torch.ones(6, dtype=torch.bool)
    a_v = torch.tensor([0.5, -1.0, 0.5, 1.0, -0.5, -0.5])
    a_s, fallback = sr.swa_scores(r_s, finished, 3, threshold=0.1)  # as LaserTrainer mixes them
    adv = sr.mix_advantages(a_v, a_s, fallback, tau=0.1)
    assert fallback.tolist() == [False] * 3 + [True] * 3
    a_s = torch.tensor([1.0, -1.0, 0.0]) * (0.5 / (0.5 + sr.SWA_EPS))
    assert torch.allclose(adv[:3], 0.9 * a_v[:3] + 0.1 * a_s)
    assert torch.allclose(adv[3:], a_v[3:])


def test_swa_truncated_counts_as_zero():
    # r_s of the truncated sample (0.9) must be replaced by 0: group = [0.6, 0, 0.6, 0]
    r_s = torch.tensor([0.6, 0.9, 0.6, 0.0])
    finished = torch.tensor([True, False, True, True])
    a_s, fallback = sr.swa_scores(r_s, finished, 4, threshold=0.1)
    g = torch.tensor([0.6, 0.0, 0.6, 0.0])
    assert torch.allclose(a_s, (g - g.mean()) / (g.std() + sr.SWA_EPS))
    assert not fallback.any()


def test_stage_schedule():
    assert [sr.stage(s, 2, 3) for s in range(1, 8)] == [1, 1, 2, 2, 2, 3, 3]
    assert sr.stage(1, 0, 0) == 3


def test_insert_zc_places_token_after_eos_by_id():
    PAD, EOS, ZC = 0, 9, 7
    # prompts left-padded (width 3), completions right-padded (width 4)
    ids = torch.tensor([[0, 5, 6, 1, 2, 9, 0],     # finished, length 3
                        [5, 6, 6, 1, 2, 3, 4],     # truncated (no EOS)
                        [0, 0, 5, 1, 2, 3, 9]])    # finished, fills the width
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 0],
                         [1, 1, 1, 1, 1, 1, 1],
                         [0, 0, 1, 1, 1, 1, 1]])
    new_ids, new_mask, slot, finished = sr.insert_zc(ids, mask, 4, ZC, [EOS], PAD)
    assert finished.tolist() == [True, False, True]
    assert slot.tolist() == [3, 4, 4]
    assert new_ids.tolist() == [[0, 5, 6, 1, 2, 9, ZC, PAD],
                                [5, 6, 6, 1, 2, 3, 4, PAD],
                                [0, 0, 5, 1, 2, 3, 9, ZC]]
    assert new_mask[0].tolist() == [0, 1, 1, 1, 1, 1, 1, 0]
    assert new_mask[1].tolist() == [1] * 7 + [0]
    # the original completion columns are unchanged where the completion mask is 1
    assert torch.equal(new_ids[:, :7][mask.bool()], ids[mask.bool()])


def test_self_verification_metrics_by_hand():
    scores = [0.9, 0.6, 0.2, 0.4, 0.7, 0.1]
    correct = [True, True, True, False, False, False]
    m = self_verification(scores, correct)
    assert m["true_acc"] == pytest.approx(2 / 3) and m["false_acc"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["acc"] == pytest.approx(4 / 6)
    only_correct = self_verification([0.9, 0.1], [True, True])  # official: an empty class counts 0
    assert only_correct["true_acc"] == 0.5 and only_correct["false_acc"] == 0.0 and only_correct["f1"] == 0.0
    assert self_verification([0.0, 0.0], [True, False])["f1"] == 0.0  # never says "correct"


def test_zc_logprobs_reads_only_the_slot_logits_and_matches_a_full_forward():
    """The reference forward's log pi(z_c | x, y, EOS) gathers the final hidden state before each
    slot and applies the lm_head there only (no sequences x length x vocabulary logits): the same
    numbers as the full forward's logits at those positions."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                         num_key_value_heads=1, intermediate_size=128, vocab_size=300,
                                         tie_word_embeddings=False)).eval()
    ids = torch.randint(0, 300, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, -3:] = 0  # a shorter row, right-padded
    slots = torch.tensor([11, 8, 5])
    with torch.no_grad():
        got = sr.zc_logprobs(model, ids, mask, slots, temperature=0.7)
        logits = model(input_ids=ids, attention_mask=mask).logits.float() / 0.7
    rows = torch.arange(3)
    want = torch.log_softmax(logits[rows, slots - 1], dim=-1)[rows, ids[rows, slots]]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
