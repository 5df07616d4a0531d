"""Signed votes (mesh/votes.py): a certificate counts exactly the votes that check out under their voters' keys."""
from loadtest.ring_balance import node_id
from mesh import votes

MAP = b"d" * 20
OTHER_MAP = b"e" * 20


def voters(count: int) -> tuple[list[str], list[votes.Signer], dict[str, bytes]]:
    ids = sorted(node_id(i) for i in range(count))
    signers = [votes.Signer() for _ in ids]
    return ids, signers, {voter: signer.public for voter, signer in zip(ids, signers)}


def test_a_vote_checks_out_only_for_what_was_signed():
    ids, signers, keys = voters(2)
    signature = signers[0].sign(ids[0], 7, 6, MAP)
    assert votes.valid(keys[ids[0]], signature, ids[0], 7, 6, MAP)
    assert not votes.valid(keys[ids[0]], signature, ids[0], 8, 6, MAP)        # another ballot
    assert not votes.valid(keys[ids[0]], signature, ids[0], 7, 5, MAP)        # another base
    assert not votes.valid(keys[ids[0]], signature, ids[0], 7, 6, OTHER_MAP)  # another map
    assert not votes.valid(keys[ids[0]], signature, ids[1], 7, 6, MAP)        # another voter
    assert not votes.valid(keys[ids[1]], signature, ids[0], 7, 6, MAP)        # another member's key
    assert not votes.valid(None, signature, ids[0], 7, 6, MAP)                # no key heard
    assert not votes.valid(keys[ids[0]], signature[:-1], ids[0], 7, 6, MAP)
    assert not votes.valid(keys[ids[0]], b"\0" * 64, ids[0], 7, 6, MAP)
    assert not votes.valid(b"\xff" * 32, signature, ids[0], 7, 6, MAP)       # not a key: no exception


def test_the_backers_are_the_voters_whose_signatures_check_out():
    ids, signers, keys = voters(5)
    signed = {voter: signer.sign(voter, 7, 6, MAP) for voter, signer in zip(ids, signers)}
    relayed = votes.certificate(signed, ids, keys, 7, 6, MAP)
    assert [index for index, _ in relayed] == [0, 1, 2, 3, 4]
    assert votes.backers(relayed, ids, keys, 7, 6, MAP) == ids
    # a relayer cannot count one vote twice, name a voter past the map, or pass one voter's vote as another's
    forged = ((0, signed[ids[0]]), (0, signed[ids[0]]), (9, signed[ids[1]]), (2, signed[ids[1]]))
    assert votes.backers(forged, ids, keys, 7, 6, MAP) == [ids[0]]
    # nor turn a vote into one for another map or ballot
    assert votes.backers(relayed, ids, keys, 7, 6, OTHER_MAP) == []
    assert votes.backers(relayed, ids, keys, 8, 6, MAP) == []


def test_a_voter_whose_key_is_unknown_is_not_counted_nor_relayed():
    ids, signers, keys = voters(3)
    signed = {voter: signer.sign(voter, 7, 6, MAP) for voter, signer in zip(ids, signers)}
    del keys[ids[1]]
    relayed = votes.certificate(signed, ids, keys, 7, 6, MAP)
    assert [index for index, _ in relayed] == [0, 2]
    assert votes.backers(((1, signed[ids[1]]),), ids, keys, 7, 6, MAP) == []


def test_a_member_heard_under_a_new_key_has_its_old_signatures_refused():
    # (a data directory from before keys were bound, or one that lost its key file: mesh/votes.py)
    ids, signers, keys = voters(1)
    old = signers[0].sign(ids[0], 7, 6, MAP)
    keys[ids[0]] = votes.Signer().public
    assert not votes.valid(keys[ids[0]], old, ids[0], 7, 6, MAP)


def test_an_id_names_one_key():
    signer = votes.Signer()
    minted = votes.id_naming(signer.public)
    assert len(minted) == 40 and all(c in "0123456789abcdef" for c in minted)
    assert votes.binds(minted, signer.public)
    other = votes.Signer().public
    assert not votes.binds(minted, other) and votes.id_naming(other) != minted
    # not a key at all, or one a byte short of one
    assert not votes.binds(minted, b"") and not votes.binds(minted, signer.public[:-1])
    # an id not minted from a key (loadtest's, and those of data directories from before) names none
    assert not votes.binds(node_id(0), signer.public)


def test_a_key_kept_as_its_seed_is_the_same_key():
    signer = votes.Signer()
    again = votes.Signer(signer.seed)
    assert len(signer.seed) == votes.SEED_BYTES and again.public == signer.public
    assert votes.valid(signer.public, again.sign("a" * 40, 3, 2, MAP), "a" * 40, 3, 2, MAP)
