"""Records -> samples: dataset readers, instruction builders, the built-in corpus, validation,
chat templates, tokenization and collation."""
