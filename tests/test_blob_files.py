"""Blob names: two formats, each verified with its own algorithm, each a safe path."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from covalent_nb.blob_files import (blake2b_digest, blob_digest, blob_relpath, digest_like, digest_matches,
                                    is_blob_digest)


def test_new_names_are_blake3_with_a_prefix_and_old_ones_blake2b_without():
    # BLAKE3's published test vector for "abc"
    assert blob_digest(b"abc") == "b3-6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    assert blake2b_digest(b"abc") == hashlib.blake2b(b"abc", digest_size=32).hexdigest()
    assert blob_relpath(blob_digest(b"abc")) == "64/" + blob_digest(b"abc")
    assert blob_relpath(blake2b_digest(b"abc")) == blake2b_digest(b"abc")[:2] + "/" + blake2b_digest(b"abc")
    with pytest.raises(ValueError, match="not a blob digest"):
        blob_relpath("../../etc/passwd")


@given(data=st.binary(max_size=2048), other=st.binary(max_size=2048))
def test_each_format_verifies_with_its_own_algorithm(data, other):
    for digest in (blob_digest(data), blake2b_digest(data)):
        assert is_blob_digest(digest) and digest_like(data, digest) == digest and digest_matches(data, digest)
        assert digest_matches(other, digest) == (other == data)
        relative = blob_relpath(digest)
        assert relative.split("/") == [digest[-64:-62], digest]  # the shard is the hash's, never the prefix
    assert blob_digest(data) != blake2b_digest(data) and blob_digest(data)[3:] != blake2b_digest(data)


@given(name=st.text(max_size=80))
def test_anything_but_a_digest_is_refused(name):
    if is_blob_digest(name):
        assert set(name.removeprefix("b3-")) <= set("0123456789abcdef") and len(name.removeprefix("b3-")) == 64
    else:
        assert not digest_matches(b"", name)
        with pytest.raises(ValueError):
            blob_relpath(name)
