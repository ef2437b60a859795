"""End to end: an inner HIL-style pytest run (two boards, two xdist workers) writes allure results with
environment, categories and redacted attachments; the real allure command line renders them into one HTML
file; headless Chromium shows the suites and tests; no private key or registered AES key is anywhere under
reports/, including inside the report's embedded data."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hil.reports.categories import NAMES
from hil.reports.render import DEFAULT_ALLURE, embedded_file, render

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
ALLURE = REPO / DEFAULT_ALLURE
AES = "00112233445566778899AABBCCDDEEFF"  # registered by the inner test
BOARD_AES = "2B7E151628AED2A6ABF7158809CF4F3C"  # from boards.toml, registered by the plugin itself

BOARDS = f"""
[board.k32w1-one]
family = "k32w1"
emulated = true

[board.rt1060-one]
family = "rt1060"
emulated = true
aes_key = "{BOARD_AES}"
"""

TESTS = f'''
import datetime, hashlib, pathlib
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hil.errors import FirmwareError, TransientError
from hil.reports import (FACT_DAC_SERIAL, FACT_FACTORY_DATA_SHA256, attach_bytes, attach_certificate,
                         attach_json, attach_text, record_environment, register_private_key,
                         register_secret, step)

AES = bytes.fromhex("{AES}")


@pytest.fixture(scope="session")
def credentials(hil_board_profile):
    key = ec.generate_private_key(ec.SECP256R1())
    register_private_key(key)
    register_secret(AES)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    with open("../secrets.txt", "a") as f:  # outside reports/: for the outer test's leak scan
        f.write(scalar.hex() + "\\n")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Matter Test DAC " + hil_board_profile.name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1234ABCD).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with step("generation", hil_board_profile) as s:
        s.facts[FACT_DAC_SERIAL] = f"{{cert.serial_number:X}}"
        attach_certificate(cert, "DAC certificate")
        attach_text("chip-cert gen-att-cert: wrote dac_key.pem\\n" + pem, "generation log")
    return key, scalar


@pytest.fixture(scope="session")
def flashed(hil_board_profile, credentials):
    key, scalar = credentials
    image = bytes.fromhex("CE47BA5E") + AES + scalar + b"\\xff" * 16
    with step("flashing", hil_board_profile, title="write factory data") as s:
        s.facts[FACT_FACTORY_DATA_SHA256] = hashlib.sha256(image).hexdigest()
        attach_bytes(image, "factory_data.bin")
        attach_json({{"dac_private_key": scalar.hex(), "aes_key": AES.hex(), "vid": "0xFFF1",
                      "note": "decrypted with " + AES.hex()}}, "factory data inspector")
    record_environment(hil_board_profile, firmware="lighting-app 1.4", vid=0xFFF1, pid=0x8005)
    return image


def test_commission(flashed, hil_board_profile):
    with step("commissioning", hil_board_profile):
        print("console: aes", AES.hex(), "board key", hil_board_profile.aes_key)  # captured -> attached


def test_firmware_rejects(flashed, hil_board_profile):
    with step("firmware", hil_board_profile):
        raise FirmwareError("factory data rejected (decrypted with " + AES.hex() + ")")


def test_probe_lost(hil_board_name):
    raise TransientError("J-Link: probe lost")
'''


def _install_allure() -> None:
    """Install the allure command line into tools/ as `make report` does (once, under a file lock)."""
    if ALLURE.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (needed to install the allure command line)")
    if shutil.which("java") is None:
        pytest.skip("java is not installed (the allure 2 command line needs Java 17)")
    (REPO / "tools").mkdir(exist_ok=True)
    with open(REPO / "tools" / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ALLURE.is_file():
            subprocess.run(
                [npm, "install", "-q", "--no-audit", "--no-fund", "--prefix", str(REPO / "tools"),
                 "allure-commandline@2.46.1"],
                check=True, capture_output=True, timeout=600,
            )  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """One inner run in <tmp>/project, then the report rendered from it."""
    root = tmp_path_factory.mktemp("allure-e2e")
    project = root / "project"
    project.mkdir()
    (project / "boards.toml").write_text(BOARDS)
    (project / "test_board_flow.py").write_text(TESTS)
    env = {**os.environ, "HIL_STATE_DIR": str(root / "state")}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hil-boards", "boards.toml",
           "-n", "2", "--dist", "loadgroup",
           "--alluredir", "reports/allure-results", "--junitxml", "reports/junit.xml"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    return project, proc


@pytest.fixture(scope="module")
def report(run):
    project, _ = run
    _install_allure()
    rendered = render(project / "reports/allure-results", project / "reports/allure-report", allure=ALLURE)
    print(f"allure render: {rendered.seconds:.2f} s")
    return rendered


def _properties(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key.replace("\\", "")] = value.replace("\\", "")
    return out


def test_inner_run_outcome_and_allure_results(run) -> None:
    project, proc = run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "4 failed, 2 passed" in proc.stdout.splitlines()[-1], proc.stdout
    results = project / "reports/allure-results"
    env = _properties(results / "environment.properties")
    assert env["boards"] == "k32w1-one, rt1060-one"
    assert (
        env["board.k32w1-one"] == "family k32w1, firmware lighting-app 1.4, VID/PID 0xFFF1/0x8005, emulated"
    )
    assert env["board.rt1060-one"].startswith("family rt1060, firmware lighting-app 1.4")
    assert env["harness.version"] and env["hil.target"] == "emulated"
    categories = json.loads((results / "categories.json").read_text())
    assert [c["name"] for c in categories] == list(NAMES)

    attachments = {}
    for path in results.glob("*-result.json"):
        res = json.loads(path.read_text())
        for container in [res, *res.get("steps", [])]:
            for att in container.get("attachments", []):
                attachments.setdefault(att["name"], []).append((results / att["source"]).read_bytes())
    for path in results.glob("*-container.json"):
        for fixture in json.loads(path.read_text()).get("befores", []):
            for st in fixture.get("steps", []):
                for att in st.get("attachments", []):
                    attachments.setdefault(att["name"], []).append((results / att["source"]).read_bytes())
    inspector = json.loads(attachments["factory data inspector"][0])
    assert inspector["dac_private_key"] == "[REDACTED]" and inspector["aes_key"] == "[REDACTED]"
    assert inspector["note"] == "decrypted with [REDACTED]" and inspector["vid"] == "0xFFF1"
    assert attachments["DAC certificate"][0].startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"[REDACTED PRIVATE KEY]" in attachments["generation log"][0]
    image = attachments["factory_data.bin"][0]
    assert image.startswith(bytes.fromhex("CE47BA5E") + b"[REDACTED]") and len(image) == 4 + 16 + 32 + 16
    assert sorted(attachments["stdout"]) == [
        b"console: aes [REDACTED] board key None\n",
        b"console: aes [REDACTED] board key [REDACTED]\n",  # the plugin registered boards.toml's aes_key
    ]


def _leaks(root: Path, secrets: list[bytes]) -> list[str]:
    """Every place under root where a private-key PEM header or one of `secrets` (common shapes) appears."""
    pem = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    shapes = []
    for s in secrets:
        shapes += [
            s,
            s.hex().encode(),
            s.hex().upper().encode(),
            base64.b64encode(s),
            base64.b64encode(s)[:-4],
        ]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        blobs = {str(path): path.read_bytes()}
        if path.suffix == ".html":  # the single-file report embeds every data file and attachment in base64
            for name, data in re.findall(rb"d\('([^']*)','([A-Za-z0-9+/=]*)'\)", blobs[str(path)]):
                blobs[f"{path}!{name.decode()}"] = base64.b64decode(data)
        for where, blob in blobs.items():
            found += [f"{where}: PEM private key" for _ in pem.finditer(blob)]
            found += [f"{where}: {shape[:8]!r}..." for shape in shapes if shape in blob]
    return found


def test_no_private_key_or_registered_key_anywhere_in_reports(run, report) -> None:
    project, proc = run
    scalars = [bytes.fromhex(line) for line in (project.parent / "secrets.txt").read_text().split()]
    secrets = [bytes.fromhex(AES), bytes.fromhex(BOARD_AES), *scalars]
    assert len(scalars) == 2
    # control: the failure the reports describe did carry the key, and the terminal got it redacted too
    assert "factory data rejected (decrypted with [REDACTED])" in proc.stdout
    assert AES.lower() not in proc.stdout.lower()
    reports = project / "reports"
    assert {"allure-results", "allure-report", "junit.xml", "qualification.md", "hil-records"} <= {
        p.name for p in reports.iterdir()
    }
    assert _leaks(reports, secrets) == []
    # control: the scan itself finds a planted key
    (reports / "planted.txt").write_text("x " + AES.lower())
    try:
        assert len(_leaks(reports, secrets)) == 1
    finally:
        (reports / "planted.txt").unlink()


def test_render_with_the_real_allure_command_line(report) -> None:
    assert report.index.is_file() and report.index.stat().st_size > 100_000
    assert report.counts == {"passed": 2, "broken": 4}  # allure: exceptions other than assertions are broken
    summary = json.loads(embedded_file(report.index, "widgets/summary.json"))
    assert summary["statistic"]["total"] == 6
    categories = json.loads(embedded_file(report.index, "data/categories.json"))["children"]
    assert {c["name"] for c in categories} == {"infrastructure", "firmware"}


def _chromium(url: str, tmp_path: Path, *extra: str) -> str:
    chromium = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           *extra, url]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = proc.stdout[proc.stdout.find("<body") :]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<script.*?</script>", "", body)))


def test_report_renders_in_headless_chromium(report, tmp_path: Path) -> None:
    url = report.index.resolve().as_uri()
    suites = _chromium(url + "#suites", tmp_path, "--dump-dom")
    assert "test_board_flow" in suites  # the suite (test module)
    tree = json.loads(embedded_file(report.index, "data/suites.json"))
    tests = tree["children"][0]["children"]
    first = next(t for t in tests if t["name"] == "test_commission[k32w1-one]")
    page = _chromium(f"{url}#suites/{first['parentUid']}/{first['uid']}", tmp_path, "--dump-dom")
    for t in tests:  # the suite's test list, and the opened test's page
        assert t["name"] in page
    assert "Passed" in page and "commissioning: k32w1-one" in page and "Retries" in page
    shot = tmp_path / "report.png"
    _chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1280,800")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_qualification_summary_of_the_run(run) -> None:
    project, _ = run
    md = (project / "reports/qualification.md").read_text()
    matrix = md.split("## Board × step", 1)[1].split("##", 1)[0]
    assert "| board | family | generation | flashing | firmware | commissioning |" in matrix
    assert "| k32w1-one | k32w1 | ✅ passed" in matrix and "| rt1060-one | rt1060 | ✅ passed" in matrix
    assert matrix.count("❌ failed") == 2
    identity = md.split("## Board identity", 1)[1]
    assert "1234ABCD" in identity and "0xFFF1/0x8005" in identity
