"""A tiny random CrossEncoder (BERT, one label, word-level tokenizer), built offline once per session."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

VOCABULARY_TEXT = (
    "how do i fix a flat bike tire bicycle wheel repair patch the inner tube pump it up again "
    "inventory list lamp chair table rug bake bread dough oven kiln clay pots garden tools "
    "which animal is the biggest cat tigers are the largest cats the cat sits on the mat"
)


def make_tiny_cross_encoder(
    path: Path, *, texts: Sequence[str] = (VOCABULARY_TEXT,), seed: int = 0, num_labels: int = 1
) -> Path:
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        list(texts),
        trainer=trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False),
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=128,
    ).save_pretrained(path)
    torch.manual_seed(seed)
    # A wide initialisation spreads the random scores apart, so that orders are not decided by rounding.
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        initializer_range=0.5,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-reranker"))


@pytest.fixture(scope="session")
def cross_encoder_scores(tiny_reranker: Path):
    """The CrossEncoder's own scores for (query, passage) pairs, computed outside the platform."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(tiny_reranker), local_files_only=True, device="cpu")

    def scores(query: str, passages: Sequence[str]) -> list[float]:
        return [float(s) for s in model.predict([(query, p) for p in passages], show_progress_bar=False)]

    return scores


@pytest.fixture
def reranker_endpoint(db: None, tiny_reranker: Path):
    from apps.chat.models import ModelEndpoint

    return ModelEndpoint.objects.create(
        name="tiny-reranker", kind=ModelEndpoint.Kind.RERANK, path=str(tiny_reranker), owned_by="tests"
    )
