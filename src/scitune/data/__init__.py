"""Records -> samples: dataset readers, instruction builders, the built-in corpus, validation,
chat templates, tokenization and collation.

- `sample`: the Sample (a LLaVA conversation record); read/write LLaVA JSON and JSONL.
- `scicap`, `vistext`, `arxivcap`, `scienceqa`: readers of the real releases and builders of
  instruction samples (`instructions` holds the fixed phrasings and their seeded choice).
- `tokenize`: chat template -> input ids and labels from the template's assistant token spans.
- `collate`: images through the model's image processor; training and generation batches.
- `validate`: every bad record by id and reason; the up-front check training runs.
- `chat_templates`: the Jinja templates of the model families.
- `corpus`: the built-in figure corpus.
"""
