"""Client secrets as domain functions, without HTTP."""

from __future__ import annotations

import re

import pytest

from clients import secrets as client_secrets
from clients.models import ClientSecret


def test_secret_shape():
    secret = client_secrets.generate_secret()
    assert re.fullmatch(r"ascs_[A-Za-z0-9_-]{60}", secret)
    assert len(secret) == client_secrets.SECRET_LENGTH == 65
    assert client_secrets.is_well_formed(secret)
    assert client_secrets.RANDOM_BYTES * 8 >= 256


def test_secrets_are_unique():
    assert len({client_secrets.generate_secret() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("position", [5, 20, 58, 60, 64])
def test_checksum_catches_a_mistyped_character(position):
    secret = client_secrets.generate_secret()
    replacement = "A" if secret[position] != "A" else "B"
    assert not client_secrets.is_well_formed(secret[:position] + replacement + secret[position + 1 :])


@pytest.mark.parametrize("value", ["", "ascs_", "hunter2", "x" * 65, "ascs_" + "a" * 59, "ascs_" + "a" * 60 + "!"])
def test_foreign_strings_are_not_well_formed(value):
    assert not client_secrets.is_well_formed(value)


@pytest.mark.django_db
def test_only_prefix_and_keyed_hash_are_stored(make_client):
    client, secret = make_client()
    row = ClientSecret.objects.get(client=client)
    assert row.prefix == secret[:12]
    assert secret not in (row.hash, row.prefix, row.hash_key_id)
    assert len(row.hash) == 64
    assert client_secrets.match_secret(secret, [row]) == row
    assert client_secrets.match_secret(client_secrets.generate_secret(), [row]) is None


def test_hash_depends_on_key(settings):
    secret = client_secrets.generate_secret()
    settings.SECRET_HASH_KEY = "a" * 64
    key_a, hash_a = client_secrets.hash_secret(secret)
    settings.SECRET_HASH_KEY = "b" * 64
    key_b, hash_b = client_secrets.hash_secret(secret)
    assert key_a != key_b and hash_a != hash_b


@pytest.mark.django_db
def test_hash_key_rotation_keeps_old_secrets_working(settings, make_client):
    settings.SECRET_HASH_KEY = "old-key-" + "o" * 40
    client, old_secret = make_client()
    old_row = ClientSecret.objects.get(client=client)

    settings.SECRET_HASH_KEY = "new-key-" + "n" * 40
    assert client_secrets.match_secret(old_secret, [old_row]) is None
    settings.SECRET_HASH_OLD_KEYS = ["old-key-" + "o" * 40]
    assert client_secrets.match_secret(old_secret, [old_row]) == old_row


def test_derived_key_follows_secret_key(settings):
    settings.SECRET_HASH_KEY = ""
    secret = client_secrets.generate_secret()
    settings.SECRET_KEY = "k" * 50
    first = client_secrets.hash_secret(secret)
    settings.SECRET_KEY = "j" * 50
    assert client_secrets.hash_secret(secret) != first


def test_match_with_no_candidates_still_hashes(monkeypatch):
    calls = []
    real = client_secrets.hash_secret
    monkeypatch.setattr(client_secrets, "hash_secret", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert client_secrets.match_secret(client_secrets.generate_secret(), []) is None
    assert calls == [1]


def test_generated_client_ids():
    ids = {client_secrets.generate_client_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[a-z0-9]{24}", i) for i in ids)
