"""charlm serve's HTTP API, spoken to by the real ``openai`` client and raw HTTP: completions
whole and streamed, n > 1, stop strings, seeded texts equal to ``charlm sample``'s, the
models listed, and bad requests refused with one line while the server goes on."""

import json

import httpx
import pytest
from click.testing import CliRunner
from conftest import error
from serving import PROMPTS, openai_client, stream_events, streamed_texts

from charlm.cli import main
from charlm.options.sampling import SamplingOptions


def expected(run, prompt, length, n=1, **options) -> list[str]:
    """What ``charlm sample`` generates after ``prompt`` (the API's texts leave it out)."""
    return [
        t[len(prompt) :]
        for t in run.generate([prompt], length, num_samples=n, warn=lambda _: None, **options)
    ]


def test_a_completion_is_the_seeded_text_of_charlm_sample(server, serve_run):
    reply = openai_client(server.url).completions.create(
        model="tang", prompt=PROMPTS[0], max_tokens=60, seed=5, temperature=0.9
    )
    sample = CliRunner().invoke(
        main,
        [
            "sample",
            "--run",
            str(serve_run.path),
            "--prefix",
            PROMPTS[0],
            "--length",
            "60",
            "--seed",
            "5",
            "--temperature",
            "0.9",
        ],
    )
    assert sample.exit_code == 0, sample.output
    assert reply.choices[0].text == sample.stdout.rstrip("\n")[len(PROMPTS[0]) :]
    assert len(reply.choices[0].text) == 60 and reply.choices[0].finish_reason == "length"
    assert reply.object == "text_completion" and reply.model == "tang"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (5, 60)


def test_n_samples_are_charlm_samples_num_samples_with_the_same_seed(server, serve_run):
    reply = openai_client(server.url).completions.create(
        model="tang",
        prompt=PROMPTS[2],
        max_tokens=40,
        n=3,
        seed=5,
        top_p=0.9,
        extra_body={"top_k": 50},
    )
    texts = [c.text for c in sorted(reply.choices, key=lambda c: c.index)]
    assert texts == expected(serve_run, PROMPTS[2], 40, n=3, seed=5, top_k=50, top_p=0.9)
    assert len(set(texts)) == 3
    assert reply.usage.completion_tokens == 120


def test_a_list_of_prompts_gives_n_choices_per_prompt_in_order(server, serve_run):
    reply = openai_client(server.url).completions.create(
        model="tang", prompt=PROMPTS[:2], max_tokens=20, n=2, seed=9
    )
    texts = [c.text for c in sorted(reply.choices, key=lambda c: c.index)]
    whole = serve_run.generate(PROMPTS[:2], 20, num_samples=2, seed=9)
    assert texts == [
        w[len(p) :] for w, p in zip(whole, [PROMPTS[0]] * 2 + [PROMPTS[1]] * 2, strict=True)
    ]


def test_streamed_text_arrives_in_chunks_and_joins_to_the_whole_reply(server, serve_run):
    client = openai_client(server.url)
    chunks = list(
        client.completions.create(
            model="tang", prompt=PROMPTS[1], max_tokens=100, seed=3, stream=True
        )
    )
    assert len(chunks) >= 100 // 16  # a chunk per turn of the batch (16 characters)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == expected(serve_run, PROMPTS[1], 100, seed=3)[0]
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"


def test_a_stream_ends_with_done_and_the_usage_when_asked(server):
    events = list(
        stream_events(
            server.url,
            {
                "prompt": PROMPTS[0],
                "max_tokens": 30,
                "seed": 1,
                "stream_options": {"include_usage": True},
            },
        )
    )
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 30


def test_a_stop_string_ends_the_text_before_it_with_finish_reason_stop(server, serve_run):
    free = expected(serve_run, PROMPTS[0], 80, seed=2)[0]
    stop = free[30:32]
    client = openai_client(server.url)
    reply = client.completions.create(
        model="tang", prompt=PROMPTS[0], max_tokens=80, seed=2, stop=[stop]
    )
    assert reply.choices[0].text == free[: free.find(stop)]
    assert reply.choices[0].finish_reason == "stop"
    texts, reasons = streamed_texts(
        server.url, {"prompt": PROMPTS[0], "max_tokens": 80, "seed": 2, "stop": stop}
    )
    assert texts == [free[: free.find(stop)]] and reasons == ["stop"]


def test_temperature_zero_is_greedy(server, serve_run):
    reply = openai_client(server.url).completions.create(
        model="tang", prompt=PROMPTS[0], max_tokens=30, temperature=0
    )
    assert reply.choices[0].text == expected(serve_run, PROMPTS[0], 30, greedy=True)[0]


def test_the_models_are_listed_with_their_size_and_loss(server, serve_run):
    models = openai_client(server.url).models.list().data
    assert [m.id for m in models] == ["tang"]
    info = models[0].model_dump()
    assert info["vocab_size"] == len(serve_run.vocab) > 256
    assert info["parameters"] > 0 and info["best_val_loss"] > 0 and info["model"] == "lstm 1x32"


def test_health_and_the_page_are_served(server):
    assert server.health()["status"] == "ok"
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and '<script src="/app.js">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(server.url + "/app.js").text.startswith("// charlm serve's page")


def options_error(**options) -> str:
    """SamplingOptions' own one line for ``options``: what ``charlm sample`` says."""
    return error(SamplingOptions, **options)


# (body, status, param, the message or the words it holds): each refused, the server fine after
BAD = [
    (b"{not json", 400, None, "the request body is not valid JSON"),
    (b"[1, 2]", 400, None, "the request body must be a JSON object"),
    ({}, 400, "prompt", "prompt must be text or a non-empty list of texts"),
    ({"prompt": 5}, 400, "prompt", "prompt must be text"),
    ({"prompt": [1, 2, 3]}, 400, "prompt", "token ids are not taken"),
    ({"prompt": ""}, 400, "prompt", "prompt must not be empty; give at least one character"),
    ({"prompt": "春", "temperature": -1}, 400, "temperature", options_error(temperature=-1)),
    ({"prompt": "春", "temperature": "hot"}, 400, "temperature", "temperature must be a number"),
    ({"prompt": "春", "top_p": 0}, 400, "top_p", options_error(top_p=0)),
    ({"prompt": "春", "top_p": 1.5}, 400, "top_p", options_error(top_p=1.5)),
    ({"prompt": "春", "top_k": -2}, 400, "top_k", options_error(top_k=-2)),
    ({"prompt": "春", "top_k": 2.5}, 400, "top_k", options_error(top_k=2.5)),
    (
        {"prompt": "春", "max_tokens": -1},
        400,
        "max_tokens",
        "max_tokens must be a whole number from 0 to 2147483647, not -1",
    ),
    (
        {"prompt": "春", "max_tokens": "9"},
        400,
        "max_tokens",
        "max_tokens must be a whole number from 0 to 2147483647, not '9'",
    ),
    ({"prompt": "春", "max_tokens": 100_001}, 400, "max_tokens", "max_tokens must be at most"),
    ({"prompt": "春", "seed": -1}, 400, "seed", options_error(seed=-1)),
    ({"prompt": "春", "seed": 2**63}, 400, "seed", options_error(seed=2**63)),
    ({"prompt": "春", "stop": [""]}, 400, "stop", options_error(stop=("",))),
    ({"prompt": "春", "stop": 5}, 400, "stop", "stop must be text or a list"),
    ({"prompt": "春", "n": 0}, 400, "n", "n must be a whole number from 1 to 16"),
    ({"prompt": "春", "n": 17}, 400, "n", "n must be a whole number from 1 to 16"),
    ({"prompt": "春", "n": True}, 400, "n", "n must be a whole number"),
    ({"prompt": ["春"] * 5, "n": 16}, 400, "prompt", "at most 64 at once"),
    ({"prompt": "春", "stream": "yes"}, 400, "stream", "stream must be true or false"),
    ({"prompt": "春", "echo": 1}, 400, "echo", "echo must be true or false"),
    (
        {"prompt": "春", "logprobs": 6},
        400,
        "logprobs",
        "logprobs must be a whole number from 0 to 5",
    ),
    ({"prompt": "春", "best_of": 2}, 400, "best_of", "best_of is not supported"),
    ({"prompt": "春", "min_p": 1}, 400, "min_p", options_error(min_p=1)),
    (
        {"prompt": "春", "repetition_penalty": 0},
        400,
        "repetition_penalty",
        options_error(repetition_penalty=0),
    ),
    (
        {"prompt": "春", "presence_penalty": 2.5},
        400,
        "presence_penalty",
        options_error(presence_penalty=2.5),
    ),
    (
        {"prompt": "春", "frequency_penalty": "x"},
        400,
        "frequency_penalty",
        "frequency_penalty must be a number",
    ),
    (
        {"prompt": "春", "stream_options": {"include_usage": True}},
        400,
        "stream_options",
        "only for streamed requests",
    ),
    ({"prompt": "春", "model": "nope"}, 404, "model", "the model 'nope' is not served here"),
    ({"prompt": "春" * 4097}, 400, "prompt", "at most 4,096 (--max-prompt-chars)"),
    (b'{"prompt": "' + b"a" * (1 << 20) + b'"}', 413, None, "larger than 1,048,576 bytes"),
]


def test_a_client_that_leaves_in_the_middle_of_its_body_leaves_no_traceback(server):
    import socket
    import time
    from urllib.parse import urlsplit

    seen = len(server.output())
    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as s:
        s.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"prompt": "'
        )
        time.sleep(0.3)  # the server is reading the body when the client goes
    time.sleep(0.5)
    r = httpx.post(server.url + "/v1/completions", json={"prompt": "春", "max_tokens": 3})
    assert r.status_code == 200, r.text
    assert "Traceback" not in server.output()[seen:], server.output()[seen:]


def test_a_bad_option_is_named_as_the_request_parameter_in_openais_error_body(server):
    r = httpx.post(server.url + "/v1/completions", json={"prompt": "春", "temperature": -1})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "message": "temperature must be 0 (greedy) or more, not -1",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": None,
        }
    }


@pytest.mark.parametrize(
    "body, status, param, message",
    BAD,
    ids=[f"{i}-{b[2]}" if isinstance(b[0], dict) else str(i) for i, b in enumerate(BAD)],
)
def test_a_bad_request_is_refused_with_one_line_and_the_server_goes_on(
    server, body, status, param, message
):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(
        server.url + "/v1/completions",
        content=data,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert message in err["message"] and "\n" not in err["message"], err
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert server.health()["status"] == "ok"


def test_a_refused_request_is_a_clear_openai_error_in_the_client(server):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        openai_client(server.url).completions.create(
            model="tang", prompt="春", max_tokens=5, temperature=-1
        )
    assert options_error(temperature=-1) in str(info.value)


def test_a_transformer_serves_many_users_in_one_batch_as_charlm_samples(tmp_path_factory):
    """A gpt run behind the server: six requests at once share the batch, their rows at
    different positions of their key/value caches (prompts of 5, 1 and 8 characters, texts of
    30 to 65: past the context of 8) and leaving at different steps; each seeded text is the
    one ``charlm sample`` draws alone."""
    import concurrent.futures

    from serving import Server, train_tiny

    import charlm

    home = tmp_path_factory.mktemp("serve-gpt")
    run = charlm.load(train_tiny(home, model="gpt", context=8))
    live = Server(run.path, "--compile-ahead", "", log=home / "server.log").wait_ready()
    try:
        bodies = [
            {"prompt": p, "max_tokens": 30 + 7 * i, "seed": i, "temperature": 0.8}
            for i, p in enumerate(PROMPTS * 2)
        ]
        with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
            replies = list(pool.map(lambda b: streamed_texts(live.url, b), bodies))
    finally:
        live.stop()
    for body, (texts, reasons) in zip(bodies, replies, strict=True):
        want = expected(run, body["prompt"], body["max_tokens"], seed=body["seed"], temperature=0.8)
        assert texts == want and reasons == ["length"]


# -- as operators of vLLM and llama.cpp expect it ---------------------------------------------


def test_chat_is_the_text_after_the_transcript_up_to_the_next_role_line(server, serve_run):
    """The openai client's chat.completions, whole and streamed: the reply is what the model
    writes after the default template's transcript, cut before a role line."""
    from charlm.serve.chat import ChatTemplate

    messages = [{"role": "system", "content": "唐詩"}, {"role": "user", "content": PROMPTS[0]}]
    template = ChatTemplate()
    want = serve_run.generate(
        [template.prompt(messages)], 60, seed=4, stop=template.stop, warn=lambda _: None
    )[0][len(template.prompt(messages)) :]
    client = openai_client(server.url)
    reply = client.chat.completions.create(model="tang", messages=messages, max_tokens=60, seed=4)
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == want
    assert reply.usage.completion_tokens == len(want)
    chunks = list(
        client.chat.completions.create(
            model="tang", messages=messages, max_completion_tokens=60, seed=4, stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == want
    assert chunks[-1].choices[0].finish_reason == reply.choices[0].finish_reason
    assert {c.object for c in chunks} == {"chat.completion.chunk"}


def test_logprobs_list_each_characters_own_and_the_likeliest_alternatives(server):
    body = {"prompt": PROMPTS[2], "max_tokens": 40, "seed": 6, "logprobs": 3}
    whole = httpx.post(server.url + "/v1/completions", json=body, timeout=60).json()
    choice = whole["choices"][0]
    lp = choice["logprobs"]
    assert "".join(lp["tokens"]) == choice["text"] and len(lp["tokens"]) == 40
    assert lp["text_offset"] == list(range(40))
    for token, own, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert len(top) == 3 and own <= 0
        best = max(top.values())
        assert own <= best + 1e-5 and list(top.values()) == sorted(top.values(), reverse=True)
        if token in top:
            assert abs(top[token] - own) <= 1e-5 * max(1.0, abs(own))
    texts, _ = streamed_texts(server.url, body)  # the same text, scored the same, streamed
    streamed = [c for e in stream_events(server.url, body) if e != "[DONE]" for c in e["choices"]]
    assert texts == [choice["text"]]
    assert [x for c in streamed if c["logprobs"] for x in c["logprobs"]["token_logprobs"]] == (
        lp["token_logprobs"]
    )


def test_echo_scores_the_prompt_as_charlm_eval_does(server, serve_run):
    """A scoring request (echo, logprobs, max_tokens 0): the prompt's characters after the
    first, each predicted from those before it, as ``charlm eval`` scores the same text."""
    text = "秦川雄帝宅，函谷壯皇居。綺殿千尋起，離宮百雉餘。"
    reply = httpx.post(
        server.url + "/v1/completions",
        json={"prompt": text, "max_tokens": 0, "echo": True, "logprobs": 0},
        timeout=60,
    ).json()
    lp = reply["choices"][0]["logprobs"]
    assert reply["choices"][0]["text"] == text and "".join(lp["tokens"]) == text
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    nats = -sum(lp["token_logprobs"][1:]) / (len(text) - 1)
    want = serve_run.evaluate(text=text, batch_size=1, seq_len=len(text))["nats_per_char"]
    assert abs(nats - want) <= 1e-4 * want


def test_n_streamed_is_one_choice_per_event_with_usage_null_until_the_last(server, serve_run):
    body = {"prompt": PROMPTS[1], "max_tokens": 30, "n": 3, "seed": 8}
    events = list(stream_events(server.url, {**body, "stream_options": {"include_usage": True}}))
    assert events[-1] == "[DONE]"
    chunks, last = events[:-2], events[-2]
    assert all(len(e["choices"]) == 1 and e["usage"] is None for e in chunks)
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 90
    texts = ["", "", ""]
    for e in chunks:
        texts[e["choices"][0]["index"]] += e["choices"][0]["text"]
    assert texts == expected(serve_run, PROMPTS[1], 30, n=3, seed=8)
    assert {e["seed"] for e in chunks} == {8}


def test_a_seed_left_out_is_drawn_and_said_so_the_text_can_be_drawn_again(server):
    first = httpx.post(server.url + "/v1/completions", json={"prompt": "春", "max_tokens": 20})
    seed = first.json()["seed"]
    again = httpx.post(
        server.url + "/v1/completions", json={"prompt": "春", "max_tokens": 20, "seed": seed}
    )
    assert again.json()["choices"][0]["text"] == first.json()["choices"][0]["text"]


def test_penalties_min_p_and_top_k_minus_one_are_charlm_samples_options(server, serve_run):
    options = dict(repetition_penalty=1.4, frequency_penalty=0.5, presence_penalty=0.3, min_p=0.05)
    reply = openai_client(server.url).completions.create(
        model="tang",
        prompt=PROMPTS[0],
        max_tokens=80,
        seed=2,
        frequency_penalty=0.5,
        presence_penalty=0.3,
        extra_body={"repetition_penalty": 1.4, "min_p": 0.05, "top_k": -1},
    )
    assert reply.choices[0].text == expected(serve_run, PROMPTS[0], 80, seed=2, **options)[0]
    assert reply.choices[0].text != expected(serve_run, PROMPTS[0], 80, seed=2)[0]


def test_a_prompt_with_characters_the_model_never_saw_is_told_so(server):
    reply = httpx.post(server.url + "/v1/completions", json={"prompt": "春☃", "max_tokens": 5})
    assert "'☃'" in reply.json()["warning"] and "<unk>" in reply.json()["warning"]
    first = next(stream_events(server.url, {"prompt": "☃春", "max_tokens": 5}))
    assert "'☃'" in first["warning"]


@pytest.mark.parametrize(
    "method, path, status",
    [("GET", "/v1/nothing", 404), ("GET", "/v1/completions", 405), ("PUT", "/v1/models", 405)],
)
def test_every_error_is_an_openai_error_object(server, method, path, status):
    r = httpx.request(method, server.url + path)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_one_model_is_described_at_its_own_address(server):
    assert httpx.get(server.url + "/v1/models/tang").json()["id"] == "tang"
    r = httpx.get(server.url + "/v1/models/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_metrics_count_requests_characters_and_first_characters(server):
    from prometheus_client.parser import text_string_to_metric_families

    httpx.post(server.url + "/v1/completions", json={"prompt": "春", "max_tokens": 7})
    httpx.post(server.url + "/v1/completions", json={"prompt": "", "max_tokens": 7})
    page = httpx.get(server.url + "/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page.text)
        for s in family.samples
    }
    ok = ("charlm_requests_total", (("route", "/v1/completions"), ("status", "200")))
    bad = ("charlm_requests_total", (("route", "/v1/completions"), ("status", "400")))
    assert samples[ok] >= 1 and samples[bad] >= 1
    assert samples[("charlm_characters_generated_total", ())] >= 7
    assert samples[("charlm_time_to_first_character_seconds_count", ())] >= 1
    assert samples[("charlm_queue_seconds_count", ())] >= 1
    assert ("charlm_rows_in_flight", ()) in samples


def test_an_unforeseen_error_is_a_500_in_openais_shape(serve_run):
    """The app's last line of defence, with a route that fails (Starlette's public add_route)."""
    from starlette.testclient import TestClient

    from charlm.serve.app import create_app

    app = create_app([serve_run])

    async def boom(request):
        raise RuntimeError("no such luck")

    app.add_route("/boom", boom)
    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 500
    assert r.json()["error"] == {
        "message": "internal error: RuntimeError: no such luck",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }


def test_chat_logprobs_are_a_content_list_of_characters(server):
    reply = openai_client(server.url).chat.completions.create(
        model="tang",
        messages=[{"role": "user", "content": PROMPTS[1]}],
        max_tokens=12,
        seed=3,
        logprobs=True,
        top_logprobs=2,
    )
    content = reply.choices[0].logprobs.content
    assert "".join(c.token for c in content) == reply.choices[0].message.content
    assert all(len(c.top_logprobs) == 2 and c.logprob <= 0 for c in content)
    assert all(bytes(c.bytes).decode() == c.token for c in content)


def test_a_run_folders_chat_toml_sets_the_template_and_a_bad_one_is_one_line(tmp_path):
    from charlm.errors import CharLMError
    from charlm.serve.chat import ChatTemplate

    assert ChatTemplate.of_run(tmp_path) == ChatTemplate()
    (tmp_path / "chat.toml").write_text(
        'message = "<{role}> {content}\\n"\nreply = "<bot> "\nstop = ["\\n<"]\n'
    )
    template = ChatTemplate.of_run(tmp_path)
    assert template.prompt([{"role": "user", "content": "hi"}]) == "<user> hi\n<bot> "
    assert template.stop == ("\n<",)
    for text, words in [
        ("message = \n", "line 1"),
        ("colour = 'red'\n", "message, reply and stop"),
    ]:
        (tmp_path / "chat.toml").write_text(text)
        with pytest.raises(CharLMError) as info:
            ChatTemplate.of_run(tmp_path)
        assert words in str(info.value) and "\n" not in str(info.value)
