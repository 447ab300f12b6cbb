"""`scitune serve`: trained checkpoints behind an OpenAI-compatible API and a web page, in one
process.

- `models`: the checkpoints it holds (checkpoint folders of any model family; LoRA adapter folders merged on load);
- `limits`: every bound on what a request may carry, and the batching settings;
- `schemas`: request bodies (OpenAI's chat schema and our figure endpoints), checked strictly;
- `images`: `data:` URLs and paths under `--image-root` -> pixel values, within the limits;
- `prompts`: a request -> the rendered prompt `scitune.prompting` makes for training and eval;
- `decoding`: per-request lengths, stop strings and streamed text inside one batched generation;
- `batcher`: requests gathered into batches and run by the one thread that touches the models;
- `app`: the FastAPI app (API, error objects, the page); `server`: uvicorn, also in a thread.
"""

from scitune.serve.limits import ServeLimits

__all__ = ["ServeLimits"]
