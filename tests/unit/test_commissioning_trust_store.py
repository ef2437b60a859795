"""PAA trust stores hold the PAA under test and nothing else; anything else is refused with the reason."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from hil.commissioning.trust_store import check_trust_store, load_paas, write_trust_store
from hil.errors import InputError
from hil.matter import certs


@pytest.fixture(scope="module")
def chain():
    paa = certs.generate_paa("Store PAA", 0xFFF2)
    pai = certs.generate_pai(paa, "Store PAI", 0xFFF2, 0x8001)
    return paa, pai, certs.generate_paa("Other PAA")


def test_written_store_holds_exactly_the_paa_as_skid_named_der(tmp_path, chain):
    paa, _, _ = chain
    store = write_trust_store(tmp_path / "store", paa)
    files = list(store.iterdir())
    assert [f.name for f in files] == [certs.skid(paa.cert).hex().upper() + ".der"]
    assert files[0].read_bytes() == paa.cert_der()
    assert check_trust_store(store, paa.cert_pem()) == store  # PEM input names the same PAA


def test_inputs_in_every_form(tmp_path, chain):
    paa, _, other = chain
    pem = tmp_path / "paa.pem"
    pem.write_bytes(paa.cert_pem())
    loaded = load_paas([paa, paa.cert, paa.cert_der(), pem, str(pem), other])
    assert [c.subject for c in loaded] == [paa.cert.subject] * 5 + [other.cert.subject]


def test_refusals_when_writing(tmp_path, chain):
    paa, pai, _ = chain
    with pytest.raises(InputError, match="empty is not allowed"):
        write_trust_store(tmp_path / "a", [])
    with pytest.raises(InputError, match="not a PAA certificate"):
        write_trust_store(tmp_path / "b", pai)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "old.der").write_bytes(b"x")
    with pytest.raises(InputError, match="not empty"):
        write_trust_store(tmp_path / "c", paa)


@pytest.mark.parametrize("extra", ["other_paa", "junk_file", "pem_copy", "subdir"])
def test_store_with_anything_else_is_refused(tmp_path, chain, extra):
    paa, _, other = chain
    store = write_trust_store(tmp_path / "store", paa)
    if extra == "other_paa":
        (store / "other.der").write_bytes(other.cert_der())
    elif extra == "junk_file":
        (store / "notes.txt").write_text("hello")
    elif extra == "pem_copy":
        (store / "paa.pem").write_bytes(paa.cert.public_bytes(serialization.Encoding.PEM))
    else:
        (store / "sub").mkdir()
    with pytest.raises(InputError) as exc:
        check_trust_store(store, paa)
    assert exc.value.exit_code == 2 and str(store) in str(exc.value)


def test_store_without_the_paa_is_refused(tmp_path, chain):
    paa, _, other = chain
    store = write_trust_store(tmp_path / "store", other)
    with pytest.raises(InputError, match="is not allowed"):
        check_trust_store(store, paa)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="does not hold the PAA 'Store PAA'"):
        check_trust_store(empty, paa)
    with pytest.raises(InputError, match="not a directory"):
        check_trust_store(tmp_path / "missing", paa)
