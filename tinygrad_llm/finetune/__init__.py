"""Fine-tuning: spam classification (the book's chapter 6), instruction following
(chapter 7) and scoring a model's answers (section 7.8); LoRA lives in ``nn.lora``
(appendix E).

Every name is importable from ``tinygrad_llm.finetune``; the code lives in:

* ``base``: what both tasks share: ``load_base_model`` and the small
  ``CLASSIFIER_BASE`` / ``INSTRUCT_BASE``, ``default_lr``, ``pretrain_on_texts``,
  ``save_finetuned`` / ``load_finetuned``, ``trainable_summary``.
* ``classify``: classification (chapter 6): ``classifier_logits`` and its ``pooling``,
  loss and accuracy, ``train_classifier_simple``, ``classify_review``,
  ``create_spam_dataloaders``.
* ``instruct``: instruction fine-tuning (chapter 7): ``create_instruction_dataloader``,
  ``response_prompt`` / ``generate_response(s)`` / ``clean_response``, ``write_json``.
* ``judges``: scoring answers (section 7.8): ``TokenF1Judge``, ``OllamaJudge``,
  ``get_judge``, ``generate_model_scores``.
"""

from __future__ import annotations

from tinygrad_llm.finetune.base import (
    CLASSIFIER_BASE,
    INSTRUCT_BASE,
    default_lr,
    load_base_model,
    load_finetuned,
    pretrain_on_texts,
    save_finetuned,
    trainable_summary,
)
from tinygrad_llm.finetune.classify import (
    POOLINGS,
    SPAM_LABELS,
    calc_accuracy_loader,
    calc_loss_batch_classifier,
    calc_loss_loader_classifier,
    classifier_logits,
    classify_review,
    create_spam_dataloaders,
    evaluate_model_classifier,
    last_token_positions,
    train_classifier_simple,
)
from tinygrad_llm.finetune.instruct import (
    clean_response,
    create_instruction_dataloader,
    generate_response,
    generate_responses,
    response_prompt,
    write_json,
)
from tinygrad_llm.finetune.judges import (
    JudgeUnavailableError,
    OllamaJudge,
    TokenF1Judge,
    generate_model_scores,
    get_judge,
    judge_prompt,
    normalize_answer,
    parse_score,
)

__all__ = [
    "POOLINGS",
    "CLASSIFIER_BASE",
    "INSTRUCT_BASE",
    "SPAM_LABELS",
    "JudgeUnavailableError",
    "OllamaJudge",
    "TokenF1Judge",
    "calc_accuracy_loader",
    "calc_loss_batch_classifier",
    "calc_loss_loader_classifier",
    "classifier_logits",
    "classify_review",
    "clean_response",
    "create_instruction_dataloader",
    "create_spam_dataloaders",
    "default_lr",
    "evaluate_model_classifier",
    "generate_model_scores",
    "generate_response",
    "generate_responses",
    "get_judge",
    "judge_prompt",
    "last_token_positions",
    "load_base_model",
    "load_finetuned",
    "normalize_answer",
    "parse_score",
    "pretrain_on_texts",
    "response_prompt",
    "save_finetuned",
    "train_classifier_simple",
    "trainable_summary",
    "write_json",
]
