// The page of `scitune serve`: it uses the server's public API only (models, examples, chat
// completions streamed as server-sent events, figure classification). Model output is set as
// text (textContent), never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let figure = null; // the chosen figure as a data: URL

function setStatus(text) {
  $("status").textContent = text;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return `${response.status}: ${body.error.message}`;
  } catch (e) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

async function loadModels() {
  const response = await fetch("/v1/models");
  if (!response.ok) throw new Error(await errorText(response));
  const names = (await response.json()).data.map((m) => m.id);
  for (const select of [$("model-a"), $("model-b")]) {
    select.replaceChildren(...names.map((name) => new Option(name, name)));
  }
  if (names.length > 1) {
    $("model-b").value = names[1];
    $("compare").checked = true;
  }
  syncCompare();
}

function syncCompare() {
  const on = $("compare").checked;
  $("model-b").disabled = !on;
  $("panel-b").hidden = !on;
}

function setFigure(dataUrl) {
  figure = dataUrl;
  $("preview").hidden = !dataUrl;
  $("no-figure").hidden = !!dataUrl;
  $("clear-figure").hidden = !dataUrl;
  if (dataUrl) $("preview").src = dataUrl;
  else $("preview").removeAttribute("src");
  for (const b of document.querySelectorAll(".examples button")) b.setAttribute("aria-pressed", "false");
}

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function loadExamples() {
  const response = await fetch("/v1/examples");
  if (!response.ok) return;
  const box = $("examples");
  for (const example of (await response.json()).data) {
    const button = document.createElement("button");
    button.type = "button";
    button.title = example.figure_type;
    button.setAttribute("aria-pressed", "false");
    button.dataset.example = example.id;
    const img = document.createElement("img");
    img.src = example.url;
    img.alt = `example: ${example.figure_type}`;
    button.append(img);
    button.addEventListener("click", async () => {
      const blob = await (await fetch(example.url)).blob();
      setFigure(await readAsDataUrl(blob));
      button.setAttribute("aria-pressed", "true");
    });
    box.append(button);
  }
}

function panels() {
  const list = [{ model: $("model-a").value, panel: $("panel-a"), text: $("answer-a"), chart: $("chart-a") }];
  if ($("compare").checked) list.push({ model: $("model-b").value, panel: $("panel-b"), text: $("answer-b"), chart: $("chart-b") });
  return list;
}

function showError(target, message) {
  target.classList.add("error");
  target.textContent = message;
}

// Streams one chat completion into `target`; resolves when it ends.
async function streamAnswer(model, question, maxTokens, target) {
  const content = [{ type: "text", text: question }];
  if (figure) content.unshift({ type: "image_url", image_url: { url: figure } });
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content }], max_tokens: maxTokens, stream: true }),
  });
  if (!response.ok) {
    showError(target, await errorText(response));
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") {
          target.dataset.done = "true";
          return;
        }
        const chunk = JSON.parse(data);
        if (chunk.error) {
          showError(target, chunk.error.message);
          return;
        }
        for (const choice of chunk.choices || []) {
          if (choice.delta && choice.delta.content) target.textContent += choice.delta.content;
        }
      }
    }
  }
}

function drawChart(target, labels) {
  const best = labels.reduce((a, b) => (b.probability > a.probability ? b : a), labels[0]);
  target.replaceChildren(...labels.map((entry) => {
    const row = document.createElement("div");
    row.className = entry === best ? "row best" : "row";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = entry.label;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * entry.probability).toFixed(1)}%`;
    track.append(bar);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(100 * entry.probability).toFixed(1)}%`;
    row.append(label, track, value);
    return row;
  }));
}

async function classify(model, target) {
  target.replaceChildren();
  if (!figure) {
    target.textContent = "(choose a figure to see its type probabilities)";
    return;
  }
  const response = await fetch("/v1/figures/classify", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, image: figure }),
  });
  if (!response.ok) {
    target.textContent = await errorText(response);
    return;
  }
  drawChart(target, (await response.json()).labels);
}

async function caption(model, target) {
  if (!figure) {
    showError(target, "choose a figure to caption");
    return;
  }
  const response = await fetch("/v1/figures/caption", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, image: figure, max_tokens: Number($("max-tokens").value) || 64 }),
  });
  if (!response.ok) {
    showError(target, await errorText(response));
    return;
  }
  target.textContent = (await response.json()).caption;
  target.dataset.done = "true";
}

async function run(kind) {
  const buttons = [$("ask"), $("caption")];
  buttons.forEach((b) => (b.disabled = true));
  const started = performance.now();
  setStatus(kind === "ask" ? "asking…" : "captioning…");
  try {
    const question = $("question").value.trim() || "What type of figure is this?";
    const maxTokens = Number($("max-tokens").value) || 64;
    await Promise.all(panels().map(async ({ model, panel, text, chart }) => {
      panel.querySelector(".model-name").textContent = model;
      text.classList.remove("error");
      text.textContent = "";
      delete text.dataset.done;
      const answer = kind === "ask" ? streamAnswer(model, question, maxTokens, text) : caption(model, text);
      await Promise.all([answer, classify(model, chart)]);
    }));
    setStatus(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    setStatus(`failed: ${err.message}`);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("compare").addEventListener("change", syncCompare);
  $("file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) setFigure(await readAsDataUrl(file));
  });
  $("clear-figure").addEventListener("click", () => {
    $("file").value = "";
    setFigure(null);
  });
  $("ask").addEventListener("click", () => run("ask"));
  $("caption").addEventListener("click", () => run("caption"));
  setFigure(null);
  try {
    await Promise.all([loadModels(), loadExamples()]);
    setStatus("ready");
    document.body.dataset.ready = "true";
  } catch (err) {
    setStatus(`cannot reach the server: ${err.message}`);
  }
});
