"""Chat templates (Jinja, as transformers applies them) for the model families scitune trains.

Every template marks assistant turns with `{% generation %}` so that
`tokenizer.apply_chat_template(..., return_assistant_tokens_mask=True)` yields the exact token
spans to supervise; label masks come from those spans, never from re-tokenised text pieces.
Message content is either a string (LLaVA conversation values, `<image>` inline) or a list of
parts (`{"type": "image"}` / `{"type": "text", "text": ...}`), where an image part renders as
`<image>` followed by a newline, as LLaVA places it.

The space between a turn's "ASSISTANT:" / "[/INST]" and its answer is inside the generation block:
the first supervised token is then the first token generated after the generation prompt, and the
prompt's ids equal the training ids up to it (a tokenizer that splits " Three" into " " + "Three"
would otherwise train on "Three" after a space that generation never produced).
"""

from __future__ import annotations

import re

_GENERATION_BLOCK = re.compile(r"{%-?\s*generation\s*-?%}")


def marks_assistant_turns(template: str | None) -> bool:
    """Whether a Jinja chat template wraps assistant turns in `{% generation %}` blocks."""
    return isinstance(template, str) and _GENERATION_BLOCK.search(template) is not None

_RENDER = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] == 'image' -%}{{ '<image>\\n' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)

# The tiny preset's: short, so that small models spend their context on content.
#   USER: <question>\nASSISTANT: <answer></s>\n
PLAIN = _RENDER + (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{ render(message['content']) + '\\n' }}"
    "{%- elif message['role'] == 'user' -%}{{ 'USER: ' + render(message['content']) + '\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ 'ASSISTANT:' }}"
    "{%- generation -%}{{ ' ' + render(message['content']) + eos_token }}{%- endgeneration -%}{{ '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)

# LLaVA v1 / Vicuna v1: "<system> USER: <q> ASSISTANT: <a></s>USER: ..."
VICUNA_V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
VICUNA_V1 = _RENDER + (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = render(messages[0]['content']) -%}"
    "{%- set messages = messages[1:] -%}"
    # The system text holds an apostrophe ("user's"), so it is quoted with double quotes in Jinja.
    '{%- else -%}{%- set system = "' + VICUNA_V1_SYSTEM + '" -%}{%- endif -%}'
    "{{ system + ' ' }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ 'USER: ' + render(message['content']) + ' ' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ 'ASSISTANT:' }}"
    "{%- generation -%}{{ ' ' + render(message['content']) + eos_token }}{%- endgeneration -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)

# Llama-2 chat: "<s>[INST] <<SYS>>\n...\n<</SYS>>\n\n<q> [/INST] <a> </s><s>[INST] ..."
LLAMA2 = _RENDER + (
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = render(messages[0]['content']) -%}"
    "{%- set messages = messages[1:] -%}{%- else -%}{%- set system = '' -%}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.first and system -%}"
    "{{ bos_token + '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + render(message['content']) + ' [/INST]' }}"
    "{%- else -%}{{ bos_token + '[INST] ' + render(message['content']) + ' [/INST]' }}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- generation -%}{{ ' ' + render(message['content']) + ' ' + eos_token }}{%- endgeneration -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

# ChatML (Qwen2, SmolLM2): "<|im_start|>user\n<q><|im_end|>\n<|im_start|>assistant\n<a><|im_end|>\n"
CHATML = _RENDER + (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{ render(message['content']) + '<|im_end|>' }}{%- endgeneration -%}{{ '\\n' }}"
    "{%- else -%}{{ render(message['content']) + '<|im_end|>\\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# Gemma (Gemma 2 and 3 instruction-tuned): "<bos><start_of_turn>user\n<q><end_of_turn>\n<start_of_turn>model\n<a><end_of_turn>\n";
# a system message is written at the start of the first user turn, as Gemma's own template does.
GEMMA = _RENDER + (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}{%- set system = render(messages[0]['content']) + '\\n\\n' -%}"
    "{%- set messages = messages[1:] -%}{%- else -%}{%- set system = '' -%}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{ '<start_of_turn>user\\n' + (system if loop.first else '') + render(message['content']) + '<end_of_turn>\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}{{ '<start_of_turn>model\\n' }}"
    "{%- generation -%}{{ render(message['content']) + '<end_of_turn>' }}{%- endgeneration -%}{{ '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

# Idefics3 and SmolVLM: "<bos>User: <q><end_of_utterance>\nAssistant: <a><end_of_utterance>\n"
# (their tokenizers' BOS: Idefics3's <|begin_of_text|>, SmolVLM's <|im_start|>).
IDEFICS = _RENDER + (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}{{ 'Assistant:' }}"
    "{%- generation -%}{{ ' ' + render(message['content']) + '<end_of_utterance>' }}{%- endgeneration -%}{{ '\\n' }}"
    "{%- else -%}{{ message['role'] | capitalize + ': ' + render(message['content']) + '<end_of_utterance>\\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"
)

CHAT_TEMPLATES = {
    "plain": PLAIN, "vicuna_v1": VICUNA_V1, "llama2": LLAMA2, "chatml": CHATML, "gemma": GEMMA, "idefics": IDEFICS,
}

# the turn markers each template writes, special tokens in the vocabularies it is meant for
# (a tokenizer that lacks them gets them added: the tiny presets)
TEMPLATE_TOKENS = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "gemma": ("<start_of_turn>", "<end_of_turn>"),
    "idefics": ("<end_of_utterance>",),
}
