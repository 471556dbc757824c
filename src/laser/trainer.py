"""GRPO and LaSeR on TRL: one `GRPOTrainer` subclass whose LaSeR parts switch off to give
the GRPO baseline on the same code path.

How z_c enters TRL's computation: every per-token log-prob forward TRL makes
(`_get_per_token_logps_and_entropies`) is routed through `insert_zc`, which places z_c right
after each finished completion's EOS, by token id, and reads log pi(z_c | x, y, EOS) from the
same forward. The returned log-probs and entropies are cut back to TRL's width, and z_c's
position lies outside `completion_mask`, so z_c never enters the policy loss, the entropy,
the token counts or the vLLM importance-sampling ratios. At generation time the forward TRL
already makes for old log-probs is reused when it exists; otherwise one no-grad forward is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from trl import GRPOConfig, GRPOTrainer

from . import selfreward as sr
from .metrics import self_verification


@dataclass
class LaserConfig(GRPOConfig):
    """`GRPOConfig` plus LaSeR's knobs (docs/paper.md, The paper's settings for the paper's values)."""

    laser: bool = field(default=True, metadata={"help": "Off: plain GRPO (the baseline), r_s only logged."})
    zc_token_id: int | None = field(default=None, metadata={"help": "Token id of z_c."})
    beta_v: float = field(default=0.1, metadata={"help": "beta_v of r_s."})
    sr_coef: float = field(default=0.1, metadata={"help": "alpha: weight of L_sr."})
    c_ref: float | None = field(default=None, metadata={"help": "Constant c_ref (calibrated or pinned)."})
    c_ref_mode: str = field(default="constant", metadata={"help": "'constant' or 'reference' (real ref forward)."})
    class_balanced: bool = field(default=True, metadata={"help": "Class-balanced weights in L_sr."})
    sr_loss_type: str = field(default="mse", metadata={"help": "'mse' (paper) or 'sft' (the official BCE/SFT ablation)."})
    swa: bool = field(default=True, metadata={"help": "Mix self-rewarding advantages in stage 3."})
    swa_tau: float = field(default=0.1, metadata={"help": "tau: weight of A_s."})
    swa_std_threshold: float = field(default=0.1, metadata={"help": "T: groups with std(r_s) <= T fall back."})
    warmup_reasoning_steps: int = field(default=0, metadata={"help": "w_r, optimizer steps of plain GRPO."})
    warmup_sr_steps: int = field(default=0, metadata={"help": "w_sr, steps of L_sr before SWA."})

    def __post_init__(self):
        super().__post_init__()
        if self.zc_token_id is None:
            raise ValueError("LaserConfig.zc_token_id is required (the z_c token id)")
        if self.c_ref_mode not in ("constant", "reference"):
            raise ValueError(f"c_ref_mode must be 'constant' or 'reference', got {self.c_ref_mode!r}")
        if self.c_ref_mode == "constant" and self.c_ref is None:
            raise ValueError("c_ref_mode 'constant' needs c_ref (calibrated or pinned)")
        if self.sr_loss_type not in ("mse", "sft"):
            raise ValueError(f"sr_loss_type must be 'mse' or 'sft', got {self.sr_loss_type!r}")
        if self.laser and self.max_steps > 0 and self.warmup_reasoning_steps + self.warmup_sr_steps >= self.max_steps:
            raise ValueError(f"warm-ups w_r + w_sr = {self.warmup_reasoning_steps + self.warmup_sr_steps} "
                             f"leave no LaSeR step in max_steps = {self.max_steps}")


class LaserTrainer(GRPOTrainer):
    """GRPO with last-token self-rewarding (LaSeR). `args.laser=False` gives plain GRPO."""

    _tag_names = ["trl", "grpo", "laser"]

    def __init__(self, *args, args_laser_ref_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        a = self.args
        vocab = self.model.get_output_embeddings().weight.shape[0]
        if not 0 <= a.zc_token_id < vocab:
            raise ValueError(f"z_c token id {a.zc_token_id} is outside the model's vocabulary (size {vocab})")
        if a.laser and a.sr_loss_type == "sft" and a.zc_token_id + 1 >= vocab:
            raise ValueError(f"the SFT ablation trains token id z_c + 1 = {a.zc_token_id + 1}, outside the "
                             f"model's vocabulary (size {vocab})")
        self._zc_active = False
        self._zc_row_tokens = None  # SFT ablation: the token inserted after each row (z_c or z_c + 1)
        self._zc_stash: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._last_rewards = None
        self._step_rows = 0.0  # completions this process trained on in the current optimizer step
        self._step_sr_weight = 0.0  # sum of w / normalizer over this process's micro-batches of the step
        self._laser_ref = None
        if a.c_ref_mode == "reference":
            self._laser_ref = args_laser_ref_model
            if self._laser_ref is None:
                raise ValueError("c_ref_mode 'reference' needs the reference model")
            self._laser_ref.eval().requires_grad_(False).to(self.accelerator.device)

    # ---- where z_c meets TRL's forward passes -------------------------------------------
    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                           *args, **kwargs):
        if not self._zc_active:
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask,
                                                              logits_to_keep, *args, **kwargs)
        if any(v is not None for k, v in kwargs.items() if k not in ("batch_size", "compute_entropy",
                                                                        "compute_aux_loss")):
            raise NotImplementedError("LaSeR supports text-only models")
        token = self._zc_row_tokens if self._zc_row_tokens is not None else self.args.zc_token_id
        ids, mask, slot, finished = sr.insert_zc(input_ids, attention_mask, logits_to_keep, token,
                                                 list(self.eos_token_ids), self._tokenizer.pad_token_id)
        logps, entropies, aux = super()._get_per_token_logps_and_entropies(model, ids, mask, logits_to_keep + 1,
                                                                          *args, **kwargs)
        self._zc_stash.append((logps.gather(1, slot.unsqueeze(1)).squeeze(1), finished))
        return logps[:, :-1], (entropies[:, :-1] if entropies is not None else None), aux

    def _zc_forward(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """One no-grad forward with z_c in place: (log pi(z_c | x, y, EOS), finished)."""
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        self._zc_active, self._zc_stash = True, []
        try:
            with torch.no_grad():
                self._get_per_token_logps_and_entropies(model, ids, mask, inputs["completion_ids"].size(1),
                                                        batch_size=self.args.per_device_train_batch_size)
        finally:
            self._zc_active = False
        return self._zc_stash[-1]

    def _ref_zc_forward(self, inputs) -> torch.Tensor:
        """log pi_ref(z_c | x, y, EOS) from a plain forward of the reference model (TRL's fused
        log-prob path is only set up for the policy)."""
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        keep = inputs["completion_ids"].size(1)
        ids, mask, slot, _ = sr.insert_zc(ids, mask, keep, self.args.zc_token_id, list(self.eos_token_ids),
                                          self._tokenizer.pad_token_id)
        slots, step = ids.size(1) - 1 - keep + slot, self.args.per_device_train_batch_size
        with torch.no_grad():  # in micro-batches, as the policy's forwards: the memory plan's activations
            return torch.cat([sr.zc_logprobs(self._laser_ref, ids[i:i + step], mask[i:i + step], slots[i:i + step],
                                             self.temperature) for i in range(0, ids.size(0), step)])

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards = rewards  # all processes' rows; column 0 is the verifier reward
        return rewards

    def _stage(self) -> int:
        if not self.args.laser:
            return 1
        return sr.stage(self.state.global_step + 1, self.args.warmup_reasoning_steps, self.args.warmup_sr_steps)

    def training_step(self, model, inputs, num_items_in_batch):
        # What one optimizer step actually trained, summed over its micro-batches and processes:
        # completions and prompts (the global batch), and the total weight of L_sr (1 when both
        # classes occur: the N_c + N_i normalisation adds up whatever the split).
        # One gather per optimizer step, not per micro-batch.
        output = super().training_step(model, inputs, num_items_in_batch)
        if self._step % self.current_gradient_accumulation_steps == 0:
            local = torch.tensor([[self._step_rows, self._step_sr_weight]], device=self.accelerator.device)
            rows, sr_weight = self.accelerator.gather(local).sum(dim=0).tolist()
            m = self._metrics["train"]
            m["step_completions"].append(rows)
            m["step_prompts"].append(rows / self.num_generations)
            if self.args.laser and self._stage() >= 2 and self.args.sr_coef > 0:
                # DDP averages gradients over processes, hence the mean
                m["sr_weight_total"].append(sr_weight / self.accelerator.num_processes)
            self._step_rows = self._step_sr_weight = 0.0
        return output

    # ---- generation time: r_s, class weights, SWA -----------------------------------------
    def _generate_and_score_completions(self, inputs):
        a = self.args
        mode = "train" if self.model.training else "eval"
        reuse = a.gradient_accumulation_steps % (a.steps_per_generation * self.num_iterations) != 0 or (
            self.use_vllm and self.vllm_importance_sampling_correction)
        self._zc_stash = []
        self._zc_active = reuse  # TRL's own old-log-prob forward will carry z_c
        try:
            out = super()._generate_and_score_completions(inputs)
        finally:
            self._zc_active = False
        if reuse:
            logp_zc, finished = self._zc_stash[0]  # the policy's (first) forward
        else:
            logp_zc, finished = self._zc_forward(self.model, out)
        if a.c_ref_mode == "reference":
            ref_logp = self._ref_zc_forward(out)
        else:
            ref_logp = torch.full_like(logp_zc, float(a.c_ref))
        # r_s (or p(z_c) for the SFT ablation): the score trained, logged and mixed into SWA
        r_s = sr.score(logp_zc, a.sr_loss_type, a.beta_v, ref_logp)

        n_local = logp_zc.size(0)
        start = self.accelerator.process_index * n_local
        r_v_all = torch.nan_to_num(self._last_rewards[:, 0].float(), nan=0.0).to(logp_zc.device)
        r_v = (r_v_all[start:start + n_local] > 0.5).float()
        r_s_all = self.accelerator.gather(r_s)
        finished_all = self.accelerator.gather(finished)
        weights_all, n_c, n_i, w_c, w_i = sr.class_weights((r_v_all > 0.5).float(), finished_all, a.class_balanced)

        stage = self._stage()
        out["sr_target"] = r_v
        out["sr_weight"] = weights_all[start:start + n_local]
        out["sr_ref"] = ref_logp
        out["sr_norm"] = torch.tensor(float(n_c + n_i), device=logp_zc.device)
        self._metrics[mode]["sr_norm"].append(float(n_c + n_i))

        if stage == 3 and a.swa:
            # groups are whole in the gathered batch; A_v for the other processes is not needed:
            # only this process's slice of A_s and of the fallback mask is mixed in.
            group = self.num_generations if mode == "train" else self.num_generations_eval
            a_s_all, fallback_all = sr.swa_scores(r_s_all, finished_all, group, a.swa_std_threshold)
            local = slice(start, start + n_local)
            out["advantages"] = sr.mix_advantages(out["advantages"], a_s_all[local], fallback_all[local],
                                                  a.swa_tau)
            self._metrics[mode]["swa_fallback_frac"].append(fallback_all.float().mean().item())

        # logging: training-time self-verification on finished solutions, r_s by class
        fin = finished_all.bool()
        correct = r_v_all > 0.5
        sv = self_verification(r_s_all[fin].tolist(), correct[fin].tolist())
        m = self._metrics[mode]
        for k, v in sv.items():
            m[f"sv_{k}"].append(v)
        m["rs_mean_correct"].append(r_s_all[fin & correct].mean().item() if (fin & correct).any() else float("nan"))
        m["rs_mean_incorrect"].append(r_s_all[fin & ~correct].mean().item() if (fin & ~correct).any() else float("nan"))
        m["finished_frac"].append(fin.float().mean().item())
        m["c_ref"].append(ref_logp.mean().item())
        m["stage"].append(float(stage))
        if a.laser:
            mse = (weights_all * (r_s_all - correct.float()) ** 2).sum().item() / max(n_c + n_i, 1)
            m["sr_mse"].append(mse)
            m["w_c"].append(w_c)
            m["w_i"].append(w_i)
        return out

    # ---- loss: TRL's policy loss + alpha * L_sr ------------------------------------------
    def _compute_loss(self, model, inputs):
        a = self.args
        use_sr = a.laser and a.sr_coef > 0 and self._stage() >= 2
        self._zc_active, self._zc_stash = use_sr, []
        if use_sr and a.sr_loss_type == "sft":  # the forward reads log pi(target token | x, y, EOS)
            self._zc_row_tokens = sr.sft_tokens(a.zc_token_id, inputs["sr_target"])
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._zc_active, self._zc_row_tokens = False, None
        mode = "train" if self.model.training else "eval"
        if mode == "train":
            self._step_rows += inputs["completion_ids"].size(0)
        self._metrics[mode]["policy_loss"].append(self.accelerator.gather(loss.detach()).mean().item())
        if not use_sr:
            return loss
        logp_zc, _ = self._zc_stash[-1]  # log pi(z_c | x, y, EOS); the target token's for SFT
        r_s = sr.self_reward(logp_zc, a.beta_v, inputs["sr_ref"])
        # Same scaling as TRL's token-level losses: the sum over this micro-batch divided by the
        # whole step's count, times processes (DDP averages) and over accumulation.
        normalizer = inputs["sr_norm"].item() / self.accelerator.num_processes
        if mode == "train":
            normalizer = normalizer * self.current_gradient_accumulation_steps / a.steps_per_generation
        l_sr = sr.sr_loss(logp_zc, r_s, inputs["sr_target"], inputs["sr_weight"], normalizer, a.sr_loss_type)
        if mode == "train":
            self._step_sr_weight += inputs["sr_weight"].sum().item() / (normalizer if normalizer > 0 else 1.0)
        self._metrics[mode]["sr_loss"].append(self.accelerator.gather(l_sr.detach()).mean().item())
        return loss + a.sr_coef * l_sr
