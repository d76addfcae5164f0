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
    ({"prompt": "春", "top_k": -1}, 400, "top_k", options_error(top_k=-1)),
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
    ({"prompt": "春", "echo": True}, 400, "echo", "echo is not supported"),
    ({"prompt": "春", "model": "nope"}, 404, "model", "the model 'nope' is not served here"),
    ({"prompt": "春" * 4097}, 400, "prompt", "at most 4,096 (--max-prompt-chars)"),
    (b'{"prompt": "' + b"a" * (1 << 20) + b'"}', 413, None, "larger than 1,048,576 bytes"),
]


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
