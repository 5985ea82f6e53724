"""Tiny, randomly initialised checkpoints for tests and local development: real models, built offline in
seconds.

``make_tiny_model`` writes a Llama checkpoint plus a BPE tokenizer for any prompt family;
``make_tiny_adapter`` writes a LoRA adapter for it; ``overfit_tiny_model`` trains a checkpoint for a few
seconds so that greedy decoding reproduces given assistant turns (e.g. a tool call), which makes model output
predictable in end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from workers.runtime.prompts import BAICHUAN_USER_ID, IGNORE_INDEX, build_training_example
from workers.runtime.specs import FAMILIES, FAMILY_CONFIG_KEY, ChatMessage, Family, ToolSpec, infer_family

_BASE_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
# Cross-entropy below ln(2) means the right token has probability > 1/2, so it is the argmax.
_GREEDY_SAFE_LOSS = 0.6
_CHATML_TOKENS = ["<|im_start|>", "<|im_end|>"]
_CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Enough English, Chinese, markup and JSON for BPE to learn merges for all prompt formats and tool syntax.
_SAMPLE_TEXT = """\
### Instruction:
What is the weather like in Paris today?
### Response:
It is sunny and warm in Paris, about 25 degrees.
[INST] <<SYS>>
You are a helpful, respectful and honest assistant.
<</SYS>>
Tell me a joke about computers. [/INST] Why did the computer go to the doctor? It had a virus!
<tool_call>{"name": "get_weather", "arguments": {"city": "Beijing", "unit": "celsius"}}</tool_call>
<tool_response>{"name": "get_weather", "content": "{\\"temperature\\": 21}"}</tool_response>
# Tools
You may call one or more functions. Available functions: {"type": "object", "properties": {}, "required": []}
The quick brown fox jumps over the lazy dog. Large language models answer questions and write code.
def add(a: int, b: int) -> int:
    return a + b
今天北京的天气怎么样？北京今天晴，气温二十一度。
你好，我是一个人工智能助手，很高兴为你服务。请问有什么可以帮你的吗？
大语言模型可以回答问题、写代码、翻译文章和总结文档。中华人民共和国的首都是北京。
上海是中国最大的城市之一。我们明天去公园散步吧。谢谢你的帮助！
こんにちは、世界。Bonjour le monde. Hola, ¿cómo estás? Привет, мир! 1 2 3 4 5 6 7 8 9 10 100 2024
"""


def _special_tokens(family: Family) -> list[str]:
    if family == "baichuan2":
        # Baichuan 2 marks user/assistant turns with ids 195/196; fill the ids up to them with unused tokens.
        fillers = [f"<unused_{i}>" for i in range(len(_BASE_SPECIAL_TOKENS), BAICHUAN_USER_ID)]
        return [*_BASE_SPECIAL_TOKENS, *fillers, "<reserved_106>", "<reserved_107>"]
    if family == "hf-template":
        return [*_BASE_SPECIAL_TOKENS, *_CHATML_TOKENS]
    return list(_BASE_SPECIAL_TOKENS)


def _train_tokenizer(*, family: Family, vocab_size: int, corpus_texts: Sequence[str]) -> PreTrainedTokenizerFast:
    special = _special_tokens(family)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))  # noqa: S106 - a token, not a secret
    # Byte-level BPE: every string (any script, emoji, binary junk) encodes, and decoding is lossless.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size, len(special) + 256),
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([_SAMPLE_TEXT, *corpus_texts] * 4, trainer=trainer)
    if family != "hf-template":
        # Like the Llama tokenizers these families ship with: plain encode() prepends <s>.
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", special.index("<s>"))]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",  # noqa: S106 - special tokens, not secrets
        eos_token="<|im_end|>" if family == "hf-template" else "</s>",
        pad_token="<pad>",  # noqa: S106
        unk_token="<unk>",  # noqa: S106
    )
    if family == "hf-template":
        fast.chat_template = _CHATML_TEMPLATE
    return fast


def make_tiny_model(
    out_dir: str | Path,
    *,
    family: Family,
    seed: int = 0,
    vocab_size: int = 1500,
    corpus_texts: Sequence[str] = (),
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
) -> Path:
    """Write a random tiny Llama checkpoint + byte-level BPE tokenizer for ``family`` to ``out_dir``; returns it.

    ``vocab_size`` is an upper bound: the built-in text yields about 900 tokens, ``corpus_texts`` add more.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    out = Path(out_dir)
    tokenizer = _train_tokenizer(family=family, vocab_size=vocab_size, corpus_texts=corpus_texts)
    extra: dict[str, Any] = {FAMILY_CONFIG_KEY: family}  # kept by the config as an attribute, and saved
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_tiny_adapter(out_dir: str | Path, *, base_path: str | Path, seed: int = 0, rank: int = 4) -> Path:
    """Write a random LoRA adapter for the checkpoint at ``base_path``; different seeds change the output."""
    base = LlamaForCausalLM.from_pretrained(base_path)
    torch.manual_seed(seed)
    # init_lora_weights=False: the default zero-initialised B matrix would make the adapter a no-op.
    config = LoraConfig(r=rank, lora_alpha=4 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = Path(out_dir)
    get_peft_model(base, config).save_pretrained(str(out))
    return out


def overfit_tiny_model(
    path: str | Path,
    *,
    conversations: Sequence[Sequence[ChatMessage]],
    tools: Sequence[ToolSpec] = (),
    max_steps: int = 300,
    learning_rate: float = 1e-2,
    seed: int = 0,
) -> Path:
    """Train the checkpoint at ``path`` in place until greedy decoding reproduces every assistant message of
    ``conversations``, the prompts rendered exactly as serving renders them (``tools`` included).

    Training stops as soon as each answer token is the model's most likely next token (probability > 1/2), so
    greedy decoding is guaranteed to reproduce the answers; raises ``RuntimeError`` if ``max_steps`` is not
    enough. Returns ``path``.
    """
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    model = LlamaForCausalLM.from_pretrained(path)
    family = infer_family(path=path)
    if family is None:
        raise ValueError(f"{path} does not record its prompt family; make it with make_tiny_model")
    examples = [
        build_training_example(
            family=family,
            tokenizer=tokenizer,
            messages=messages,
            max_length=model.config.max_position_embeddings,
            tools=tools,
        )
        for messages in conversations
    ]
    width = max(len(example.input_ids) for example in examples)
    input_ids = torch.tensor([e.input_ids + [tokenizer.pad_token_id] * (width - len(e.input_ids)) for e in examples])
    labels = torch.tensor([e.labels + [IGNORE_INDEX] * (width - len(e.labels)) for e in examples])
    attention_mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in examples])
    targets = labels[:, 1:]
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    for _ in range(max_steps):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        token_losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
        )[targets != IGNORE_INDEX]
        if token_losses.max().item() < _GREEDY_SAFE_LOSS:
            break
        optimizer.zero_grad()
        token_losses.mean().backward()
        optimizer.step()
    else:
        raise RuntimeError(f"the model did not learn the answers in {max_steps} steps")
    model.eval()
    model.save_pretrained(path)
    return Path(path)
