"""The recipe reference page is generated from the schema and kept in step with it."""

from scitune.config import DataConfig, LoraConfig, ModelConfig, RunConfig, StageConfig, StageRun
from scitune.config.reference import render
from scitune.settings import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "reference" / "recipe.md"


def test_the_committed_page_is_the_generated_one():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/reference/recipe.md is stale: python -m scitune.config.reference docs/reference/recipe.md"
    )


def test_every_key_of_every_section_is_documented():
    text = render()
    for path, cls in [("model", ModelConfig), ("stages.<name>", StageRun), ("stages.<name>.stage", StageConfig),
                      ("stages.<name>.stage.lora_config", LoraConfig), ("stages.<name>.data", DataConfig), ("run", RunConfig)]:
        section = text.split(f"\n## `{path}`\n", 1)[1].split("\n## ", 1)[0]
        for name, info in cls.__pydantic_fields__.items():
            row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
            assert info.description and info.description.split(";")[0].replace("|", "\\|") in row, (path, name)
    assert "| `warmup_ratio` | number | `0.03` | [0, 1) |" in text
    assert "| `lr` | number | `0.002` | > 0 |" in text
