"""`htr serve` as a user runs it: a real server process on loopback (an ephemeral port) with
ESPnet's fixture pack. Its answers equal `htr recognize --json`'s, bad uploads get 4xx with a
message, concurrent requests are decoded in batches (as its log says), it writes no file, SIGTERM
stops it cleanly, and the page works in headless Chromium (a screenshot is kept)."""
import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, SHARED, require, run_tool

MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"
SEARCH = ["--beam_size", "4", "--nbest", "2"]
ARTIFACTS = Path(os.environ.get("HTR_TEST_ARTIFACTS", REPO / "tests" / "artifacts"))


class Server:
    """`python -m htr.bin.serve ...` in `cwd`; its log is collected, its URL read from the log."""

    def __init__(self, cwd, *args):
        self.log, self.cwd = [], cwd
        self.proc = subprocess.Popen([sys.executable, "-m", "htr.bin.serve", "--model", str(MODEL), "--port", "0",
                                      *SEARCH, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=dict(os.environ, TMPDIR=str(cwd)))
        self.collector = threading.Thread(target=self.collect, daemon=True)
        self.collector.start()
        deadline = time.monotonic() + 120
        while not (url := self.url()) and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        assert url, "server did not start:\n" + "".join(self.log)
        self.base = url

    def collect(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def url(self):
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", "".join(self.log))
        return found and found.group(1)

    def post(self, data, content_type="application/octet-stream", path="/recognize"):
        req = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post_file(self, path, field="image"):
        return self.post(*multipart(field, Path(path).name, Path(path).read_bytes()))

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=30) as r:
            return r.read()

    def batch_sizes(self):
        return [int(n) for n in re.findall(r"INFO batch of (\d+) decoded", "".join(self.log))]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=60)
        self.collector.join(timeout=10)  # the log's last lines
        return status


def multipart(field, filename, data):
    boundary = "htr-test-boundary-7d3a"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_lines")
    run_tool("synth_lines", root / "data", "--num", 6, "--seed", 11)
    return sorted((root / "data" / "images").glob("*.png"))


@pytest.fixture(scope="module")
def expected(lines):
    """What `htr recognize --json` says of each line, by file name."""
    proc = run_tool("recognize", *lines, "--model", MODEL, "--json", *SEARCH)
    return {Path(r["image"]).name: r for r in map(json.loads, proc.stdout.splitlines())}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # a batch waits up to 400 ms to fill, so concurrent requests share one; small limits to test them
    srv = Server(tmp_path_factory.mktemp("serve_cwd"), "--max_batch", "4", "--max_wait_ms", "400",
                 "--max_upload_mb", "0.25", "--max_image_pixels", "2000000", "--io_timeout", "2")
    yield srv
    assert srv.stop() == 0, "".join(srv.log)
    assert "Traceback" not in "".join(srv.log), "".join(srv.log)


def same_result(got, want):
    """Equal texts, positions and settings; scores within float error (batches pad differently)."""
    assert [h["text"] for h in got["nbest"]] == [h["text"] for h in want["nbest"]]
    for g, w in zip(got["nbest"], want["nbest"]):
        assert g["score"] == pytest.approx(w["score"], abs=1e-4)
        assert g["scores"] == pytest.approx(w["scores"], abs=1e-4)
    for key, field in (("characters", "char"), ("words", "text")):
        assert [(c[field], c["x"]) for c in got[key]] == [(c[field], c["x"]) for c in want[key]]
        assert [c["confidence"] for c in got[key]] == pytest.approx([c["confidence"] for c in want[key]], abs=1e-3)
    assert (got["width"], got["height"], got["decoding"]) == (want["width"], want["height"], want["decoding"])


def test_answers_equal_recognize_json(server, lines, expected):
    for path in lines[:3]:
        status, got = server.post_file(path)
        assert status == 200 and got["image"] == path.name
        same_result(got, expected[path.name])
    # the raw bytes as the body work too, named by ?name=
    status, got = server.post(lines[0].read_bytes(), "image/png", "/recognize?name=raw.png")
    assert status == 200 and got["image"] == "raw.png"
    same_result(got, expected[lines[0].name])
    info = json.loads(server.get("/info"))
    assert info["decoding"] == expected[lines[0].name]["decoding"] and info["batching"]["max_batch"] == 4
    assert b'id="file"' in server.get("/") and server.get("/static/app.js")


def test_concurrent_requests_are_decoded_in_batches(server, lines, expected):
    before = len(server.batch_sizes())
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(server.post_file, lines + lines[:2]))
    for path, (status, got) in zip(lines + lines[:2], answers):
        assert status == 200
        same_result(got, expected[path.name])  # batched equals decoded alone
    sizes = server.batch_sizes()[before:]  # logged before their requests were answered
    assert sum(sizes) == 8 and max(sizes) > 1 and max(sizes) <= 4, sizes
    stats = json.loads(server.get("/stats"))
    assert stats["requests"] == sum(server.batch_sizes())
    assert stats["batch_sizes"] == {str(k): server.batch_sizes().count(k) for k in sorted(set(server.batch_sizes()))}


def test_bad_uploads_get_4xx_with_a_message(server, lines, tmp_path):
    def refused(status, answer, code, needle):
        assert status == code and needle in answer["error"], (status, answer)

    refused(*server.post_file(REPO / "setup.py"), 400, "setup.py: not an image")
    refused(*server.post(b""), 400, "empty upload")
    truncated = lines[0].read_bytes()[:200]
    refused(*server.post(*multipart("image", "cut.png", truncated)), 400, "cut.png")
    refused(*server.post(b"x" * 5_000_000), 413, "exceeds the server's limit of 262144 bytes")  # read, dropped, answered
    huge = io.BytesIO()
    Image.new("1", (4000, 1000), 1).save(huge, "PNG")  # 4 Mpixel in a few kB
    refused(*server.post(*multipart("image", "huge.png", huge.getvalue())), 413, "huge.png: image 4000x1000 exceeds")
    wide = io.BytesIO()
    Image.new("L", (30000, 1), 255).save(wide, "PNG")  # within the pixel limits, but 480,000 frames
    refused(*server.post(*multipart("image", "C:\\fakepath\\wide.png", wide.getvalue())), 413,
            "wide.png: a 30000x1 image makes")
    sliver = io.BytesIO()
    Image.new("L", (1, 200), 255).save(sliver, "PNG")
    refused(*server.post(*multipart("image", "sliver.png", sliver.getvalue())), 400, "sliver.png")
    refused(*server.post(b"--x\r\nno headers", "multipart/form-data; boundary=x"), 400, "malformed multipart")
    refused(*server.post(b"{}", path="/elsewhere"), 404, "POST /recognize")

    def raw(*headers, body=b""):
        conn = http.client.HTTPConnection(server.base.removeprefix("http://"), timeout=30)
        conn.putrequest("POST", "/recognize", skip_host=any(name == "Host" for name, _ in headers))
        for header in headers:
            conn.putheader(*header)
        conn.endheaders(body)
        r = conn.getresponse()
        answer = (r.status, json.loads(r.read())["error"])
        conn.close()
        return answer

    assert raw() == (411, "no Content-Length: send the image as the request body or a multipart form")
    assert raw(("Host", "rebound.example:8000"))[0] == 403  # a loopback server answers loopback names only
    assert raw(("Content-Length", "-1"), body=b"x" * 1000)[0] == 400
    status, error = raw(("Content-Length", "100"), body=b"x" * 10)  # then stalls past --io_timeout
    assert status == 408 and "stalled" in error
    with pytest.raises(urllib.error.HTTPError) as e:
        server.get("/static/../server.py")
    assert e.value.code == 404
    # the server is still well, and wrote no file (uploads stay in memory)
    assert server.post_file(lines[1])[0] == 200
    assert list(server.cwd.iterdir()) == []


def test_keep_alive_survives_errors(server, lines, expected):
    """One persistent connection: a refused upload, then good ones; refusals that leave the body
    unread close the connection, and say so."""
    conn = http.client.HTTPConnection(server.base.removeprefix("http://"), timeout=60)

    def post(path, body):
        conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        return r.status, r.getheader("Connection"), json.loads(r.read())

    assert post("/recognize", b"not an image")[:2] == (400, None)
    status, _, got = post(f"/recognize?name={lines[2].name}", lines[2].read_bytes())
    assert status == 200
    same_result(got, expected[lines[2].name])
    assert post("/recognize?name=again.png", lines[2].read_bytes())[0] == 200
    conn.close()


def test_sigterm_stops_the_server(tmp_path):
    srv = Server(tmp_path)
    assert json.loads(srv.get("/health")) == {"status": "ok"}
    assert srv.stop() == 0
    assert "stopping" in "".join(srv.log)


def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    require(webdriver is not None, "selenium (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    require(chromium and driver, "headless Chromium (Debian chromium + chromium-driver)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(arg)
    options.binary_location = chromium
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def test_page_in_headless_chromium(server, lines, expected):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    try:
        driver.get(server.base + "/")
        WebDriverWait(driver, 30).until(lambda d: str(MODEL) in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "file").send_keys(str(lines[0]))
        WebDriverWait(driver, 120).until(
            lambda d: d.find_element(By.ID, "text").get_attribute("data-state") in ("done", "error"))
        want = expected[lines[0].name]
        text = driver.find_element(By.ID, "text")
        assert text.get_attribute("data-state") == "done", driver.find_element(By.ID, "status").text
        assert text.text == want["nbest"][0]["text"].strip()
        boxes = driver.find_elements(By.CSS_SELECTOR, "#overlay rect.box.char")
        assert len(boxes) == len(want["characters"]) and all(b.is_displayed() for b in boxes)
        assert [int(float(b.get_attribute("x"))) for b in boxes] == [c["x"][0] for c in want["characters"]]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#nbest tbody tr")) == len(want["nbest"])
        assert driver.find_element(By.ID, "download-json").is_displayed()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "serve_page.png"))

        driver.find_element(By.ID, "file").send_keys(str(REPO / "setup.py"))  # an error shows its message
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "text").get_attribute("data-state") == "error")
        assert "not an image" in driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
