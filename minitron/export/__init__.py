"""Exports of a checkpoint to the formats where small models run (GGUF for llama.cpp, Ollama, LM Studio).

`gguf_layout` says how a Hugging Face Llama maps onto llama.cpp's tensors and metadata,
`gguf_tokenizer` carries the tokenizer over, `gguf_file` writes one file per quantization.
"""
