// charlm serve's page: POST /v1/completions with stream: true, and the server-sent events
// read from the response body as they come (EventSource cannot POST). No build step.
"use strict";

const $ = (id) => document.getElementById(id);
let controller = null;

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function number(id) {
  const raw = $(id).value.trim();
  return raw === "" ? undefined : Number(raw);
}

function stopStrings() {
  // comma-separated; \n and \t typed as two characters mean a newline and a tab
  const raw = $("stop").value;
  if (!raw) return undefined;
  return raw.split(",").filter((s) => s !== "")
    .map((s) => s.replace(/\\n/g, "\n").replace(/\\t/g, "\t"));
}

// the sampling settings, each sent as the request's field of the same name
const NUMBERS = ["max_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty",
                 "frequency_penalty", "presence_penalty", "seed"];

function request() {
  const body = { model: $("model").value || undefined, prompt: $("prompt").value,
                 stop: stopStrings(), stream: true };
  for (const id of NUMBERS) body[id] = number(id);
  return JSON.stringify(body);
}

function headers() {
  const key = $("api_key").value.trim();
  return key ? { "Content-Type": "application/json", Authorization: `Bearer ${key}` }
             : { "Content-Type": "application/json" };
}

function running(on) {
  $("generate").disabled = on;
  $("continue").disabled = on || !$("generated").textContent;
  $("stop-button").disabled = !on;
}

function continueText() {
  // the output appended to the prompt, and the model goes on from there
  $("prompt").value = $("shown-prompt").textContent + $("generated").textContent;
  generate();
}

function summary(count, reason, seed, started) {
  const why = reason === "stop" ? "a stop string ended it" : "length reached";
  const seconds = (performance.now() - started) / 1000;
  const speed = seconds > 0 ? ` · ${Math.round(count / seconds).toLocaleString()} chars/s` : "";
  return `${count} characters (${why}) · seed ${seed}${speed}`;
}

async function generate() {
  controller = new AbortController();
  $("shown-prompt").textContent = $("prompt").value;
  $("generated").textContent = "";
  setStatus("generating…");
  running(true);
  let count = 0, reason = null, seed = null;
  const started = performance.now();
  try {
    const response = await fetch("/v1/completions", {
      method: "POST", headers: headers(), body: request(), signal: controller.signal,
    });
    if (!response.ok) {
      const reply = await response.json().catch(() => ({}));
      throw new Error((reply.error && reply.error.message) || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const events = buffer.split("\n\n");
      buffer = events.pop();
      let text = "";
      for (const event of events) {
        const data = event.replace(/^data: /, "");
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.seed != null) seed = chunk.seed;
        for (const choice of chunk.choices) {
          text += choice.text;
          reason = choice.finish_reason || reason;
        }
      }
      if (text) {
        $("generated").textContent += text;
        count += [...text].length;
      }
    }
    setStatus(summary(count, reason, seed, started));
  } catch (e) {
    if (e.name === "AbortError") {
      setStatus(`stopped after ${count} characters` + (seed == null ? "" : ` · seed ${seed}`));
    }
    else setStatus(e.message, true);
  } finally {
    running(false);
    controller = null;
  }
}

async function loadModels() {
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    const reply = await response.json();
    if (!response.ok) throw new Error(reply.error ? reply.error.message : response.statusText);
    for (const m of reply.data) {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = m.id;
      $("model").appendChild(option);
    }
    const describe = () => {
      const m = reply.data.find((d) => d.id === $("model").value);
      if (!m) return;
      const loss = m.best_val_loss == null ? "" : `, val loss ${m.best_val_loss.toFixed(3)}`;
      const params = m.parameters == null ? "" : `, ${m.parameters.toLocaleString()} parameters`;
      $("model-info").textContent = `${m.model}${params}, ${m.vocab_size} characters${loss}`;
    };
    $("model").addEventListener("change", describe);
    describe();
  } catch (e) {
    setStatus("cannot list the models: " + e.message, true);
  }
}

$("generate").addEventListener("click", generate);
$("continue").addEventListener("click", continueText);
$("api_key").addEventListener("change", () => { if (!$("model").options.length) loadModels(); });
$("stop-button").addEventListener("click", () => controller && controller.abort());
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !$("generate").disabled) generate();
});
loadModels();
