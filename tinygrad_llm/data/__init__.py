"""The data layer: text to training batches (the book's chapter 2, and the data preparation of
chapters 6 and 7).

* Tokenizers (chapter 2): :class:`SimpleTokenizerV1`, :class:`SimpleTokenizerV2`,
  :func:`build_vocab`, :func:`get_tokenizer` (GPT-2 BPE via ``tiktoken``) and the
  from-scratch byte-level :class:`BPETokenizer`.
* Sampling (chapter 2): :class:`GPTDataset`, :class:`DataLoader`, :func:`create_dataloader`,
  :func:`train_val_split`.
* Data sets: :func:`fetch` (download, verify, cache), spam classification (chapter 6) and
  instruction data (chapter 7).

Nothing here imports the tensor engine: batches are plain int64 NumPy arrays.
"""

from __future__ import annotations

from tinygrad_llm.data._checks import MalformedRecordError
from tinygrad_llm.data.bpe import GPT2_PATTERN, BPETokenizer, bytes_to_unicode
from tinygrad_llm.data.download import (
    DATASETS,
    ChecksumError,
    DataNotAvailableError,
    DatasetSpec,
    RemoteFile,
    data_dir,
    default_cache_dir,
    fetch,
)
from tinygrad_llm.data.instruct import (
    InstructionDataset,
    InstructionExample,
    custom_collate_fn,
    extract_response,
    format_input,
    format_response,
    instruction_splits,
    load_instruction_data,
)
from tinygrad_llm.data.sampling import (
    DataLoader,
    GPTDataset,
    Splits,
    create_dataloader,
    default_collate,
    train_val_split,
)
from tinygrad_llm.data.spam import LABELS, SpamDataset, read_spam_tsv, spam_splits
from tinygrad_llm.data.tokenizers import (
    ENDOFTEXT,
    UNK,
    SimpleTokenizerV1,
    SimpleTokenizerV2,
    TiktokenTokenizer,
    Tokenizer,
    build_vocab,
    get_tokenizer,
    simple_split,
)

__all__ = [
    "DATASETS",
    "ENDOFTEXT",
    "GPT2_PATTERN",
    "LABELS",
    "UNK",
    "BPETokenizer",
    "ChecksumError",
    "DataLoader",
    "DataNotAvailableError",
    "DatasetSpec",
    "GPTDataset",
    "InstructionDataset",
    "InstructionExample",
    "MalformedRecordError",
    "RemoteFile",
    "SimpleTokenizerV1",
    "SimpleTokenizerV2",
    "SpamDataset",
    "Splits",
    "TiktokenTokenizer",
    "Tokenizer",
    "build_vocab",
    "bytes_to_unicode",
    "create_dataloader",
    "custom_collate_fn",
    "data_dir",
    "default_cache_dir",
    "default_collate",
    "extract_response",
    "fetch",
    "format_input",
    "format_response",
    "get_tokenizer",
    "instruction_splits",
    "load_instruction_data",
    "read_spam_tsv",
    "simple_split",
    "spam_splits",
    "train_val_split",
]
