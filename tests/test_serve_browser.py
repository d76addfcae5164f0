"""charlm serve's page in a real browser (headless Chromium driven by Playwright): a Chinese
prompt typed, Generate clicked, the text grows in as it is produced and ends as the seeded
``charlm sample`` text; Stop stops a long one."""

import shutil
import time

import pytest
from serving import PROMPTS

CHROMIUM = (
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or ("/usr/bin/chromium" if shutil.os.path.exists("/usr/bin/chromium") else None)
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary found (Debian: apt-get install chromium)"
)

# every change of the generated text, as the page shows it
WATCH = """() => {
  window.seen = [];
  new MutationObserver(() => window.seen.push(document.getElementById('generated').textContent))
    .observe(document.getElementById('generated'), {childList: true, characterData: true,
                                                    subtree: true});
}"""


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # the page's Content-Security-Policy forbids eval, which Playwright's waits use
        page = browser.new_page(viewport={"width": 900, "height": 700}, bypass_csp=True)
        page.goto(server.url + "/")
        page.wait_for_function("document.getElementById('model').options.length > 0")
        yield page
        browser.close()


def settings(page, **values):
    for name, value in values.items():
        page.fill(f"#{name}", str(value))


def test_the_text_grows_in_and_ends_as_the_seeded_sample(page, serve_run):
    prompt, length = PROMPTS[2], 3000
    want = serve_run.generate(
        [prompt], length, seed=7, temperature=0.8, top_k=40, warn=lambda _: None
    )[0][len(prompt) :]
    page.fill("#prompt", "")
    page.type("#prompt", prompt)  # typed key by key, as a user (an input method aside) would
    settings(page, temperature=0.8, top_k=40, top_p=1, max_tokens=length, seed=7, stop="")
    page.evaluate(WATCH)
    page.click("#generate")
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('length')", timeout=60_000
    )
    assert page.text_content("#generated") == want
    assert page.text_content("#shown-prompt") == prompt
    seen = [s for s in page.evaluate("window.seen") if s]
    assert len(seen) >= 2 and all(want.startswith(s) for s in seen)  # grew in steps
    status = page.text_content("#status")
    assert status.startswith(f"{length} characters (length reached) · seed 7 · ")
    assert status.endswith(" chars/s")


def test_the_prompt_has_a_label_and_the_status_is_announced(page):
    assert page.get_attribute("#status", "aria-live") == "polite"
    assert page.locator("label[for=prompt]").count() == 1
    assert page.get_by_label("Prompt").evaluate("e => e.id") == "prompt"


def test_continue_appends_the_output_to_the_prompt_and_goes_on(page, serve_run):
    settings(page, temperature=1, top_k=0, max_tokens=30, seed=3, stop="")
    page.fill("#prompt", PROMPTS[1])
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').textContent.includes('(')")
    first = page.text_content("#generated")
    page.click("#continue")
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('(') && "
        "document.getElementById('shown-prompt').textContent.length > 1"
    )
    assert page.input_value("#prompt") == PROMPTS[1] + first
    want = serve_run.generate([PROMPTS[1] + first], 30, seed=3, warn=lambda _: None)[0]
    assert page.text_content("#generated") == want[len(PROMPTS[1] + first) :]


def test_the_penalties_and_min_p_are_sent_as_set(page, serve_run):
    options = dict(min_p=0.05, repetition_penalty=1.5, frequency_penalty=0.4, presence_penalty=0.2)
    settings(page, temperature=1, top_k=0, max_tokens=60, seed=5, stop="", **options)
    page.fill("#prompt", PROMPTS[0])
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').textContent.includes('(')")
    want = serve_run.generate([PROMPTS[0]], 60, seed=5, warn=lambda _: None, **options)[0]
    assert page.text_content("#generated") == want[len(PROMPTS[0]) :]
    settings(page, min_p=0, repetition_penalty=1, frequency_penalty=0, presence_penalty=0)


def test_stop_strings_typed_with_escapes_end_the_text(page, serve_run):
    free = serve_run.generate([PROMPTS[0]], 200, seed=4, warn=lambda _: None)[0][5:]
    stop = next(free[i : i + 2] for i in range(50, 198) if not {"\n", ","} & set(free[i : i + 2]))
    settings(page, temperature=1, top_k=0, max_tokens=200, seed=4, stop=stop + ",\\n\\n")
    page.fill("#prompt", PROMPTS[0])
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').textContent.includes('(')")
    cut = min(i for i in (free.find(stop), free.find("\n\n")) if i >= 0)
    assert page.text_content("#generated") == free[:cut]
    assert "a stop string ended it" in page.text_content("#status")


def test_stop_stops_a_long_generation(page, server):
    settings(page, max_tokens=100_000, seed="", stop="")
    page.click("#generate")
    page.wait_for_function("document.getElementById('generated').textContent.length > 100")
    page.click("#stop-button")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('stopped')")
    shown = page.text_content("#generated")
    time.sleep(0.5)
    assert page.text_content("#generated") == shown and len(shown) < 100_000
    deadline = time.monotonic() + 5
    while server.health()["streams"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.health()["streams"] == 0  # its row left the batch
    assert page.is_enabled("#generate") and not page.is_enabled("#stop-button")


def test_a_bad_setting_shows_the_servers_one_line(page):
    settings(page, top_p=0, max_tokens=10)
    page.click("#generate")
    page.wait_for_function("document.getElementById('status').className === 'error'")
    assert page.text_content("#status").startswith("top_p must be in (0, 1], not 0")
    settings(page, top_p=1)
