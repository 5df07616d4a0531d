"""A node's id and vote key (hypercache/identity.py): minted together, kept in the data directory."""
import stat

import pytest

from hypercache.identity import ID_FILE, KEY_FILE, load_identity
from mesh import votes


def test_without_a_data_directory_each_process_mints_an_id_that_names_its_key():
    first, second = load_identity(""), load_identity("")
    assert first.bound and second.bound
    assert first.node_id != second.node_id and first.signer.public != second.signer.public


def test_a_new_data_directory_keeps_both_and_the_next_start_reads_them(tmp_path):
    data = tmp_path / "data"
    first = load_identity(str(data))
    assert first.bound and votes.binds(first.node_id, first.signer.public)
    assert (data / ID_FILE).read_text() == first.node_id + "\n"
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    again = load_identity(str(data))
    assert (again.node_id, again.signer.public) == (first.node_id, first.signer.public)
    assert sorted(p.name for p in data.iterdir()) == [ID_FILE, KEY_FILE]     # no temporary file left


def test_a_data_directory_from_before_keeps_its_id_which_names_no_key(tmp_path):
    (tmp_path / ID_FILE).write_text("ab" * 20 + "\n")
    first = load_identity(str(tmp_path))
    assert first.node_id == "ab" * 20 and not first.bound
    again = load_identity(str(tmp_path))
    assert again.node_id == "ab" * 20 and again.signer.public == first.signer.public


def test_a_crash_between_the_two_writes_leaves_the_id_the_key_names(tmp_path):
    # the key is written first: an id file missing (or not an id) is minted again from it
    first = load_identity(str(tmp_path))
    (tmp_path / ID_FILE).unlink()
    assert load_identity(str(tmp_path)).node_id == first.node_id
    (tmp_path / ID_FILE).write_text("not an id\n")
    assert load_identity(str(tmp_path)).node_id == first.node_id


@pytest.mark.parametrize("data", [b"", b"zz" * 32, b"ab" * 31, b"ab" * 33, b"\xff\xfe" * 32, None])
def test_a_key_file_that_is_not_a_key_stops_the_start_naming_it(tmp_path, data):
    load_identity(str(tmp_path))
    kept = (tmp_path / ID_FILE).read_text()
    (tmp_path / KEY_FILE).unlink()
    if data is None:
        (tmp_path / KEY_FILE).mkdir()       # (cannot be read at all)
    else:
        (tmp_path / KEY_FILE).write_bytes(data)
    with pytest.raises(ValueError, match=KEY_FILE):
        load_identity(str(tmp_path))
    assert (tmp_path / ID_FILE).read_text() == kept    # the id is not given to a new key


def test_with_mesh_keys_the_id_is_theirs_and_only_the_vote_key_is_kept(tmp_path):
    curve_id = "cd" * 20
    first = load_identity(str(tmp_path), curve_id)
    assert first.node_id == curve_id and not first.bound
    assert not (tmp_path / ID_FILE).exists()    # (no id file the node does not go by)
    assert load_identity(str(tmp_path), curve_id).signer.public == first.signer.public
