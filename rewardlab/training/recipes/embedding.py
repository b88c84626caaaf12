"""``rewardlab train --method embedding``: embed the pairs, fit the head(s), evaluate, save the model.

:class:`EmbeddingRecipe` shares the preference data steps of the outcome recipes
(:mod:`~rewardlab.training.recipes.preference_steps`); its model is a frozen
:class:`~rewardlab.models.embedding.Embedder`, its training embeds the pairs and fits the heads
(:mod:`rewardlab.training.embedding_heads`; ``--debias-length`` is :mod:`rewardlab.training.debias`),
and it opens OUT only after training, once the heads and the normalisation are checked finite.
Every process writes (the method runs on one). It refuses the fine-tuning options it cannot
honour (``--lora``, ``--engine trl``, ``--compile``, ``--learning-rate``, ``--resume``, ``--head-init``).

Run: ``rewardlab train --method embedding --model minilm --data DATA --out runs/emb``.
"""

from __future__ import annotations

import time
from typing import Any

from rewardlab.training.options import (
    DebiasOptions,
    EmbeddingTrainOptions,
    FineTuneOptions,
    LoraOptions,
    PreferenceLossOptions,
    SequenceOptions,
)
from rewardlab.training.recipe import Recipe, TrainResult
from rewardlab.training.recipes.preference_steps import (
    load_preference_data,
    refuse_cpu_flex_attention,
    write_preference_summary,
)
from rewardlab.training.size_defaults import resolve_size_defaults


class EmbeddingRecipe(Recipe):
    """``rewardlab train --method embedding``: embed, fit the head(s), evaluate, save (see the module doc)."""

    opens_out_before_train = False
    parts = (EmbeddingTrainOptions, SequenceOptions, PreferenceLossOptions, DebiasOptions)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """No fine-tuning options (LoRA, TRL, learning rate, resume, head init); the parts' checks."""
        if cfg.lora or cfg.engine != "native" or cfg.compile:
            raise ValueError(
                "--method embedding trains a head on frozen embeddings: no --lora, --engine trl or --compile"
            )
        EmbeddingTrainOptions.check_embedding_train_options(cfg)
        if cfg.learning_rate is not None:
            raise ValueError(
                "--method embedding fits its heads by L-BFGS, with no learning rate: drop "
                "--learning-rate (--l2 sets the regularisation)"
            )
        cfg.refuse_head_init()
        # options this method ignores are still checked, as every method did before the parts: a bad
        # --precision, --merge without --lora or --epochs 0 is an error, not silently dropped
        FineTuneOptions.check_fine_tune_options(cfg)
        LoraOptions.check_lora_options(cfg)
        super().check_config(cfg)
        if cfg.resume:
            raise ValueError(
                "--resume: --method embedding writes no checkpoints to resume from (a run takes seconds to "
                "minutes): train again into a new --out, or give --overwrite to replace the model in OUT"
            )

    def load_data(self) -> None:
        """The preference data, its split and its summary."""
        self.data = load_preference_data(self.cfg)

    def write_data_summary(self) -> None:
        """``data_summary.json`` and ``data_summary.md``."""
        write_preference_summary(self.data, self.out, self.reporter.say)

    @property
    def writer(self) -> bool:
        """Every process opens OUT and writes (the method runs on one process)."""
        return True

    def load_model(self) -> None:
        """The frozen embedding model (its cache on disk); the clock of the run starts here."""
        from rewardlab.models.embedding import Embedder

        self.cfg, _ = resolve_size_defaults(self.cfg)  # epochs: 1 when left out (no learning rate)
        cfg = self.cfg
        refuse_cpu_flex_attention(cfg)
        self.start = time.time()
        embedder = self.embedder = Embedder(
            cfg.model,
            max_length=cfg.max_length,
            truncation=cfg.truncation,
            prompt_view=cfg.embed_prompt,
            layers=cfg.embed_layers,
            pooling=cfg.embed_pooling,
            dtype=cfg.embed_dtype,
        )
        e = embedder
        self.reporter.say(
            f"embedding with {e.folder} ({e.arch}, {e.pooling} pooling, {e.dtype} "
            f"({e.dtype_reason}){', chat template' if e.chat else ''}; cache {e.cache_file})"
        )

    def _embed(self, data: Any) -> tuple[Any, Any, Any, dict[str, int], int, Any]:
        """Chosen and rejected embeddings of the usable pairs, margins, exclusions, cut count, lengths."""
        import torch

        from rewardlab.training.debias import log_lengths

        everything = data.all_pairs(include_ties=True)
        pairs = [p for p in everything if p.usable]
        excluded = {
            "tie": sum(p.tie for p in everything),
            "identical chosen and rejected": sum(p.identical and not p.tie for p in everything),
        }
        prompts = [p.prompt for p in pairs]
        x = self.embedder.embed(
            prompts * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs], progress=True
        )
        margin = torch.tensor([(p.margin or 0.0) if self.cfg.use_margin else 0.0 for p in pairs])
        kept = {k: v for k, v in excluded.items() if v}
        lens = (log_lengths([p.chosen for p in pairs]), log_lengths([p.rejected for p in pairs]))
        return x[: len(pairs)], x[len(pairs) :], margin, kept, self.embedder.last_cut, lens

    def train(self) -> None:
        """Embed both splits, fit the heads, evaluate, measure the normalisation, check it all finite."""
        import torch

        from rewardlab.models.feature_stats import fit_feature_stats
        from rewardlab.training.embedding_heads import train_ensemble
        from rewardlab.training.finite import check_values, check_weights
        from rewardlab.training.run_records import low_accuracy_warning

        cfg = self.cfg
        xc, xr, margin, self.excluded, self.train_cut, train_lengths = self._embed(self.data.train)
        lengths = train_lengths if cfg.debias_length else None
        if len(xc) == 0:
            from rewardlab.errors import RewardlabError
            from rewardlab.training.dataset import no_usable_pairs_message

            raise RewardlabError(no_usable_pairs_message(self.data.train, self.excluded))
        ec, er, emargin, self.eval_excluded, self.eval_cut, _ = self._embed(self.data.evals)
        if self.train_cut:
            self.reporter.warn(
                f"{self.train_cut} of {2 * len(xc)} training sequences were longer than --max-length "
                f"{cfg.max_length} and were cut ({cfg.truncation}) before embedding"
            )
        self.embedded_s = time.time() - self.start
        self.heads, self.histories = train_ensemble(
            xc, xr, margin, cfg.ensemble, seed=cfg.seed, kind=cfg.head, objective=cfg.objective, l2=cfg.l2,
            lengths=lengths,
        )  # fmt: skip
        self.runtime = time.time() - self.start
        self.train_used, self.eval_used = len(xc), len(ec)
        self.eval_metrics = self._evaluate(ec, er, emargin) if len(ec) else {}
        self.norm = self._normalization(xc, xr)
        self.feature_stats = fit_feature_stats(torch.cat([xc, xr]), seed=cfg.seed)
        low = low_accuracy_warning(self.eval_metrics.get("eval_accuracy"), self.data.summary, self.out)
        if low:
            self.reporter.warn(low)
        heads = self.heads
        for i, head in enumerate(heads):
            check_weights(head, f"head {i + 1} of {len(heads)}, before saving")
        check_values(self.norm, "the reward normalisation", f"{len(heads)} head(s), before saving")

    def _evaluate(self, ec: Any, er: Any, emargin: Any) -> dict[str, float]:
        """Held-out loss and preference metrics of the heads' mean (and their spread)."""
        import torch

        from rewardlab.metrics import preference_metrics
        from rewardlab.training.embedding_heads import ensemble_scores
        from rewardlab.training.losses import Comparisons, comparison_loss

        heads = self.heads
        sc, sr = ensemble_scores(heads, ec).mean(0), ensemble_scores(heads, er).mean(0)
        n = len(sc)
        loss = comparison_loss(
            torch.cat([sc, sr]),
            Comparisons(torch.arange(n), torch.arange(n, 2 * n), emargin, torch.full((n,), 1.0 / n)),
        )
        m = preference_metrics((sc - sr).tolist(), torch.cat([sc, sr]).tolist())
        metrics = {"eval_loss": loss.item(), **{f"eval_{k}": v for k, v in m.items()}}
        if self.cfg.ensemble > 1:
            spread = torch.cat([ensemble_scores(heads, ec), ensemble_scores(heads, er)], 1).std(0)
            metrics["eval_ensemble_std_mean"] = spread.mean().item()
        self.reporter.say(
            f"held-out: accuracy {metrics['eval_accuracy']:.3f}, mean margin "
            f"{metrics['eval_margin_mean']:.4f}, loss {metrics['eval_loss']:.4f}"
        )
        return metrics

    def _normalization(self, xc: Any, xr: Any) -> dict[str, float]:
        """Mean and std of the heads' mean reward on every training response."""
        import torch

        from rewardlab.training.embedding_heads import ensemble_scores

        rewards = torch.cat(
            [ensemble_scores(self.heads, xc).mean(0), ensemble_scores(self.heads, xr).mean(0)]
        )
        return {
            "mean": rewards.mean().item(),
            "std": rewards.std(unbiased=False).clamp_min(1e-8).item(),
            "samples": len(rewards),
        }

    def save(self) -> TrainResult:
        """Write the heads, ``train_summary.json``, ``rewardlab.json`` and ``INTEGRATION.md``."""
        from safetensors.torch import save_file

        from rewardlab.models.embedding import HEADS_FILE
        from rewardlab.models.reward_model import INFO_FILE
        from rewardlab.training.run_records import write_run_files

        save_file(
            {
                f"member{i}.{k}": v.contiguous()
                for i, h in enumerate(self.heads)
                for k, v in h.state_dict().items()
            },
            str(self.out / HEADS_FILE),
        )
        from rewardlab.models.feature_stats import save_feature_stats

        stats = save_feature_stats(
            self.out, self.feature_stats, "embedding", f"{self.feature_stats.samples} training responses"
        )
        summary = self._summary()
        write_run_files(self.out, summary, {**self._info(), "feature_stats": stats})
        heads = f"{self.cfg.ensemble} head(s)"
        self.reporter.say(
            f"saved the embedding reward model to {self.out} ({heads}, {INFO_FILE}, {HEADS_FILE})"
        )
        return self.result(summary)

    def _summary(self) -> dict[str, Any]:
        """``train_summary.json``."""
        from rewardlab import __version__
        from rewardlab.training.run_records import data_record

        embedder = self.embedder
        return {
            "rewardlab_version": __version__,
            "engine": "native",
            "method": "embedding",
            "data": data_record(self.cfg, self.data.split, self.data.summary),
            "train_pairs": {
                "used": self.train_used,
                "excluded": self.excluded,
                "sequences_cut": self.train_cut,
            },
            "eval_pairs": {
                "used": self.eval_used,
                "excluded": self.eval_excluded,
                "sequences_cut": self.eval_cut,
            },
            "embedding": {
                "model": str(embedder.folder),
                "sequences_embedded_now": embedder.embedded,
                "seconds": self.embedded_s,
            },
            "heads": self.histories,
            "runtime_s": self.runtime,
            "eval_metrics": self.eval_metrics,
            "normalization": self.norm,
            "warnings": self.reporter.warnings,
        }

    def _info(self) -> dict[str, Any]:
        """``rewardlab.json``."""
        from rewardlab import __version__
        from rewardlab.config import to_dict
        from rewardlab.training.debias import debias_record
        from rewardlab.training.run_records import data_digest, input_format_record

        cfg, embedder = self.cfg, self.embedder
        return {
            "kind": "orm",
            "method": "embedding",
            "engine": "native",
            "arch": embedder.arch,
            "base_model": str(embedder.folder),
            "max_length": cfg.max_length,
            "truncation": cfg.truncation,
            "input_format": input_format_record(
                self.data.train, embedder.tokenizer, embedder.arch, cfg, chat=embedder.chat
            ),
            "embedding": {
                "pooling": embedder.pooling,
                "dtype": embedder.dtype,
                "chat": embedder.chat,
                "dim": embedder.dim,
                "prompt_view": cfg.embed_prompt,
                "layers": embedder.layers,
            },
            "head": {"kind": cfg.head, "objective": cfg.objective, "ensemble": cfg.ensemble},
            "debias_length": debias_record([h["length_coef"] for h in self.histories])
            if cfg.debias_length
            else None,
            "normalization": self.norm,
            "metrics": self.eval_metrics,
            "train_config": to_dict(cfg),
            "data_summary": data_digest(self.data.summary),
            "rewardlab_version": __version__,
        }
